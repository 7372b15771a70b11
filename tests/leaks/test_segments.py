"""The leaked-token index (qorgau/leaks/segments.py): sorted, memory-mapped segments of (token, incident)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from qorgau.core.errors import Conflict, IntegrityFailure, InvalidInput
from qorgau.leaks import segments as seg_mod
from qorgau.leaks.segments import (
    Index,
    Merger,
    SegmentWriter,
    build_segments_from_sorted_partitions,
    collect_garbage,
    merge,
    read_manifest,
    write_segment,
)


def random_tokens(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)


def reference(*batches: tuple[np.ndarray, np.ndarray | int]) -> dict[bytes, set[int]]:
    ref: dict[bytes, set[int]] = {}
    for tokens, incidents in batches:
        ids = np.broadcast_to(np.asarray(incidents), (len(tokens),))
        for token, incident in zip(map(bytes, tokens), ids.tolist()):
            ref.setdefault(token, set()).add(int(incident))
    return ref


def assert_answers(index: Index, ref: dict[bytes, set[int]], sample: int = 3000) -> None:
    keys = list(ref)
    step = max(1, len(keys) // sample)
    for token in keys[::step]:
        assert index.lookup(token) == tuple(sorted(ref[token]))


def test_every_written_token_finds_its_incidents_and_others_find_none(tmp_path: Path) -> None:
    tokens = random_tokens(50_000, 1)
    incidents = np.random.default_rng(2).integers(0, 2**32, len(tokens), dtype=np.uint64)
    info = write_segment(tmp_path, tokens, incidents)
    assert info is not None and info.entries == len(tokens)
    with Index.open(tmp_path, verify=True) as index:
        assert index.entries == len(tokens)
        assert_answers(index, reference((tokens, incidents)))
        for absent in map(bytes, random_tokens(2_000, 3)):
            assert index.lookup(absent) == ()


def test_a_token_in_several_incidents_and_segments_returns_each_incident_once(tmp_path: Path) -> None:
    shared = random_tokens(100, 4)
    write_segment(tmp_path, np.concatenate([shared, shared, random_tokens(1000, 5)]), 7)  # duplicates in one file
    write_segment(tmp_path, shared, 3)
    write_segment(tmp_path, shared[:10], 7)
    with Index.open(tmp_path) as index:
        assert [s.entries for s in index.segments] == [1100, 100, 10]
        for token in map(bytes, shared):
            assert index.lookup(token) == (3, 7)


def test_tokens_sharing_a_long_prefix_are_told_apart_by_the_full_token(tmp_path: Path) -> None:
    tokens = random_tokens(64, 6)
    tokens[1:, :16] = tokens[0, :16]  # 16 equal bytes: even the 88-bit key collides
    write_segment(tmp_path, tokens[:32], np.arange(32))
    twin = bytes(tokens[40])  # same first 16 bytes, never written
    with Index.open(tmp_path) as index:
        for i in range(32):
            assert index.lookup(bytes(tokens[i])) == (i,)
        assert index.lookup(twin) == ()
        assert not index.contains_any(tokens[32:])
    with Index.open(tmp_path, exact=False) as loose:
        # Without the confirmation a prefix collision is a candidate: the documented trade-off.
        assert len(loose.lookup(twin)) == 32


def test_lookup_many_agrees_with_single_lookups(tmp_path: Path) -> None:
    a, b = random_tokens(20_000, 7), random_tokens(20_000, 8)
    ids_a = np.random.default_rng(9).integers(0, 50, len(a))
    write_segment(tmp_path, a, ids_a)
    info_b = write_segment(tmp_path, np.concatenate([b, a[:500]]), 99)
    assert info_b is not None
    queries = np.concatenate([a[::3], b[::5], random_tokens(3_000, 10)])
    np.random.default_rng(11).shuffle(queries)
    with Index.open(tmp_path) as index:
        matches = index.lookup_many(queries)
        got: dict[int, list[int]] = {}
        for q, inc in zip(matches.query.tolist(), matches.incidents.tolist()):
            got.setdefault(q, []).append(inc)
        for q, token in enumerate(map(bytes, queries)):
            assert tuple(got.get(q, ())) == index.lookup(token)
        assert index.contains(queries).tolist() == [bool(index.lookup(t)) for t in map(bytes, queries)]
        # The notification join: only the named (new) segment is searched.
        only_b = index.lookup_many(queries, segments=[info_b.name])
        assert set(only_b.incidents.tolist()) == {99}
        assert len(only_b.query) == sum(1 for t in map(bytes, queries) if 99 in index.lookup(t))
        assert index.lookup_many(queries[:0]).query.size == 0


def test_input_given_as_bytes_lists_or_s32_arrays_is_the_same(tmp_path: Path) -> None:
    tokens = random_tokens(100, 12)
    write_segment(tmp_path / "a", [bytes(t) for t in tokens], 1)
    write_segment(tmp_path / "b", tokens.view("S32").ravel(), 1)
    with Index.open(tmp_path / "a") as a, Index.open(tmp_path / "b") as b:
        for token in map(bytes, tokens):
            assert a.lookup(token) == b.lookup(token) == (1,)


def test_bad_input_names_the_field_and_writes_nothing(tmp_path: Path) -> None:
    secret = b"\x42" * 31
    with pytest.raises(InvalidInput) as err:
        write_segment(tmp_path, [secret], 1)
    assert err.value.field == "tokens" and secret.hex() not in str(err.value)
    with pytest.raises(InvalidInput) as err:
        write_segment(tmp_path, random_tokens(3, 13), [1, 2, 2**32])
    assert err.value.field == "incidents"
    with pytest.raises(InvalidInput) as err:
        write_segment(tmp_path, random_tokens(3, 13), [-1, 2, 3])
    assert err.value.field == "incidents"
    with pytest.raises(InvalidInput):
        write_segment(tmp_path, np.zeros((3, 31), np.uint8), 1)
    with Index.open(tmp_path) as index:
        assert index.entries == 0 and read_manifest(tmp_path).generation == 0
        with pytest.raises(InvalidInput) as err:
            index.lookup(secret)
        assert err.value.field == "token"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(("seg-", ".tmp-", ".run-", "MANIFEST"))]


def test_an_empty_writer_publishes_nothing(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path) as writer:
        writer.add(np.zeros((0, 32), np.uint8), 1)
    assert writer.info is None
    assert read_manifest(tmp_path).segments == ()


def test_a_writer_over_its_memory_budget_sorts_externally_with_the_same_result(tmp_path: Path) -> None:
    batches = [(random_tokens(30_000, 20 + k), k) for k in range(5)]
    batches.append((batches[0][0][:1000], 0))  # duplicates across spilled runs
    spilled: list[str] = []
    real_spill = SegmentWriter._spill

    def spy(self: SegmentWriter) -> None:
        real_spill(self)
        spilled.append(self._runs[-1].name)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SegmentWriter, "_spill", spy)
        with SegmentWriter(tmp_path / "ext", memory_budget=3_000_000) as writer:
            for tokens, incident in batches:
                writer.add(tokens, incident)
    assert len(spilled) >= 3
    with SegmentWriter(tmp_path / "mem", memory_budget=1 << 30) as mem_writer:
        for tokens, incident in batches:
            mem_writer.add(tokens, incident)
    assert writer.info is not None and mem_writer.info is not None
    assert writer.info.entries == mem_writer.info.entries == 150_000
    ext = seg_mod.Segment(tmp_path / "ext" / writer.info.name)
    mem = seg_mod.Segment(tmp_path / "mem" / mem_writer.info.name)
    try:  # the same entries, keys and buckets (the external file only reserved room for the duplicates)
        for column in ("tokens", "keys", "incidents", "offsets"):
            assert np.array_equal(getattr(ext, column), getattr(mem, column))
    finally:
        ext.close()
        mem.close()
    assert not [n for n in os.listdir(tmp_path / "ext") if n.startswith((".run-", ".tmp-"))]
    with Index.open(tmp_path / "ext") as index:
        assert_answers(index, reference(*batches))


def test_merge_replaces_its_inputs_in_one_step_and_old_readers_keep_working(tmp_path: Path) -> None:
    batches = [(random_tokens(10_000, 30 + k), 100 + k) for k in range(3)]
    batches.append((batches[0][0][:2000], 100))  # the same pairs again: dropped by the merge
    infos = [write_segment(tmp_path, t, i) for t, i in batches]
    ref = reference(*batches)
    reader = Index.open(tmp_path)
    before = read_manifest(tmp_path)
    merged = merge(tmp_path, [i.name for i in infos if i], memory_budget=200_000)  # several prefix ranges
    after = read_manifest(tmp_path)
    assert after.generation == before.generation + 1
    assert [s.name for s in after.segments] == [merged.name]
    assert merged.entries == len(ref) == 30_000
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith("seg-")) == [merged.name]
    assert_answers(reader, ref)  # still on the unlinked, mapped inputs
    assert len(reader.segments) == 4
    assert reader.refresh() is True and [s.name for s in reader.segments] == [merged.name]
    assert_answers(reader, ref)
    reader.close()
    with Index.open(tmp_path, verify=True) as fresh:
        assert fresh.entries == 30_000
    with pytest.raises(Conflict):
        merge(tmp_path, [infos[0].name, merged.name])  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        merge(tmp_path, [merged.name])


def test_the_merger_merges_a_full_tier_and_keeps_the_segment_count_bounded(tmp_path: Path) -> None:
    merger = Merger(tmp_path, fanout=4, max_segments=6)
    written = [(random_tokens(300, 40 + k), k) for k in range(3)]
    for tokens, incident in written:
        write_segment(tmp_path, tokens, incident)
    assert merger.run_once() is None  # three of a tier: not yet
    written.append((random_tokens(300, 43), 3))
    write_segment(tmp_path, *written[-1])
    result = merger.run_once()
    assert result is not None and result.entries == 1200
    assert len(read_manifest(tmp_path).segments) == 1
    # Different tiers beyond max_segments: the smallest are merged.
    for k, size in enumerate([5, 50, 500, 5000, 20, 200, 2000]):
        written.append((random_tokens(size, 50 + k), 10 + k))
        write_segment(tmp_path, *written[-1])
    plan = merger.plan(read_manifest(tmp_path))
    assert len(plan) >= 2
    while merger.run_once() is not None:
        pass
    assert len(read_manifest(tmp_path).segments) <= 6
    with Index.open(tmp_path) as index:
        assert_answers(index, reference(*written))


def test_the_background_merger_thread_merges_and_stops(tmp_path: Path) -> None:
    batches = [(random_tokens(200, 60 + k), k) for k in range(4)]
    for tokens, incident in batches:
        write_segment(tmp_path, tokens, incident)
    merger = Merger(tmp_path, fanout=4, interval=0.05)
    merger.start()
    try:
        for _ in range(400):
            if len(read_manifest(tmp_path).segments) == 1:
                break
            time.sleep(0.05)
    finally:
        merger.stop(timeout=30)
    assert merger.errors == []
    assert len(read_manifest(tmp_path).segments) == 1
    with Index.open(tmp_path) as index:
        assert_answers(index, reference(*batches))


def test_files_no_manifest_lists_are_invisible_and_collected_unless_a_writer_runs(tmp_path: Path) -> None:
    tokens = random_tokens(1000, 70)
    write_segment(tmp_path, tokens[:500], 1)
    # An unpublished but complete segment (a writer killed between rename and publish), and temp files.
    orphan = write_segment(tmp_path / "elsewhere", tokens[500:], 2)
    assert orphan is not None
    os.rename(tmp_path / "elsewhere" / orphan.name, tmp_path / orphan.name)
    (tmp_path / ".tmp-deadbeef.qls").write_bytes(b"half")
    (tmp_path / ".run-deadbeef.qls").write_bytes(b"half")
    (tmp_path / "MANIFEST.tmp-deadbeef").write_bytes(b"{")
    writer = SegmentWriter(tmp_path)  # an active writer: its temp files are not garbage yet
    assert collect_garbage(tmp_path) == []
    writer.abort()
    with Index.open(tmp_path) as index:
        assert index.entries == 500
        assert index.lookup(bytes(tokens[600])) == ()
    names = set(os.listdir(tmp_path))
    assert orphan.name not in names
    assert not [n for n in names if n.startswith((".tmp-", ".run-", "MANIFEST.tmp-"))]


def test_a_corrupted_segment_fails_verification(tmp_path: Path) -> None:
    info = write_segment(tmp_path, random_tokens(1000, 71), 1)
    assert info is not None
    path = tmp_path / info.name
    with open(path, "r+b") as fh:
        fh.seek(-5, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-5, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 1]))
    with pytest.raises(IntegrityFailure) as err:
        Index.open(tmp_path, verify=True)
    assert err.value.field == "segment"
    with open(path, "r+b") as fh:
        fh.write(b"NOTASEG!")
    with pytest.raises(IntegrityFailure):
        Index.open(tmp_path)


def test_refresh_picks_up_new_segments(tmp_path: Path) -> None:
    a, b = random_tokens(100, 72), random_tokens(100, 73)
    write_segment(tmp_path, a, 1)
    with Index.open(tmp_path) as index:
        assert index.refresh() is False
        write_segment(tmp_path, b, 2)
        assert index.lookup(bytes(b[0])) == ()
        assert index.refresh() is True
        assert index.lookup(bytes(b[0])) == (2,) and index.lookup(bytes(a[0])) == (1,)


def test_bulk_ingest_by_prefix_partitions_publishes_all_partitions_at_once(tmp_path: Path) -> None:
    tokens = random_tokens(40_000, 74)
    incidents = np.random.default_rng(75).integers(1, 9, len(tokens))
    write_segment(tmp_path, random_tokens(10, 76), 500)
    generation = read_manifest(tmp_path).generation
    # What the Spark job does: partition by the token's first byte range, sort each partition, write it.
    part_of = tokens[:, 0] // 64
    partitions = []
    for p in range(4):
        rows = np.flatnonzero(part_of == p)
        order = np.lexsort(tuple(tokens[rows, k] for k in range(31, -1, -1)))
        partitions.append((tokens[rows[order]], incidents[rows[order]]))
    infos = build_segments_from_sorted_partitions(tmp_path, iter(partitions), job="spark-job-1")
    assert len(infos) == 4 and sum(i.entries for i in infos) == len(tokens)
    assert read_manifest(tmp_path).generation == generation + 1
    assert not (tmp_path / "staging" / "spark-job-1").exists()
    with Index.open(tmp_path, verify=True) as index:
        assert_answers(index, reference((tokens, incidents)))


def test_segment_layout_is_what_the_format_says(tmp_path: Path) -> None:
    tokens = random_tokens(5000, 77)
    info = write_segment(tmp_path, tokens, 5)
    assert info is not None
    seg = seg_mod.Segment(tmp_path / info.name)
    try:
        raw = (tmp_path / info.name).read_bytes()
        assert raw[:8] == b"QLSEG\x00\x01\x00"
        lay = seg.layout
        order = np.lexsort(tuple(tokens[:, k] for k in range(31, -1, -1)))
        expect = tokens[order]
        assert np.array_equal(seg.tokens, expect)
        assert all(off % 4096 == 0 for off in (lay.off_offsets, lay.off_keys, lay.off_incidents, lay.off_tokens))
        words = expect.view(">u8").astype(np.uint64)
        b = lay.bucket_bits
        assert b == 10  # 5000 entries: about 5 a bucket
        keys = (words[:, 0] << np.uint64(b)) | (words[:, 1] >> np.uint64(64 - b))
        assert np.array_equal(seg.keys, keys)
        buckets = words[:, 0] >> np.uint64(64 - b)
        per_bucket = np.bincount(buckets.astype(np.intp), minlength=1 << b)
        assert np.array_equal(np.diff(seg.offsets.astype(np.int64)), per_bucket)
        assert set(seg.incidents.tolist()) == {5}
    finally:
        seg.close()


def test_a_retried_spark_task_replaces_its_staged_partition_instead_of_doubling_it(tmp_path: Path) -> None:
    tokens = random_tokens(1000, 78)
    seg_mod.stage_partition(tmp_path, "job-7", tokens, 1, partition=3)
    seg_mod.stage_partition(tmp_path, "job-7", tokens, 1, partition=3)  # the retry
    seg_mod.stage_partition(tmp_path, "job-7", random_tokens(10, 79), 2, partition=4)
    assert read_manifest(tmp_path).segments == ()  # staged is not visible
    infos = seg_mod.publish_staged(tmp_path, "job-7")
    assert sorted(i.entries for i in infos) == [10, 1000]
    with Index.open(tmp_path) as index:
        assert index.entries == 1010 and index.lookup(bytes(tokens[0])) == (1,)
    with pytest.raises(InvalidInput):
        seg_mod.stage_partition(tmp_path, "../escape", tokens, 1)


def test_the_join_path_and_the_bucket_path_find_the_same_pairs(tmp_path: Path) -> None:
    tokens = random_tokens(30_000, 80)
    tokens[100:110, :8] = tokens[99, :8]  # equal 64-bit prefixes, different keys
    tokens[200:205, :16] = tokens[199, :16]  # equal 128 bits: only the full token tells them apart
    incidents = np.random.default_rng(81).integers(0, 4, len(tokens))
    write_segment(tmp_path, np.concatenate([tokens, tokens[:5000]]), np.concatenate([incidents, incidents[:5000] + 1]))
    queries = np.concatenate([tokens[::2], random_tokens(70_000, 82), tokens[95:210]])  # > 65,536: the join path
    with Index.open(tmp_path) as index:
        seg = index._segments[0]
        words = queries.view(">u8").astype(np.uint64)
        by_merge = seg._candidates_by_merge(words[:, 0], words[:, 1])
        by_bucket = seg._candidates_by_bucket(words[:, 0], words[:, 1])
        assert sorted(zip(*map(np.ndarray.tolist, by_merge))) == sorted(zip(*map(np.ndarray.tolist, by_bucket)))
        matches = index.lookup_many(queries)
        got: dict[int, list[int]] = {}
        for q, inc in zip(matches.query.tolist(), matches.incidents.tolist()):
            got.setdefault(q, []).append(inc)
        ref = reference((tokens, incidents), (tokens[:5000], incidents[:5000] + 1))
        for q, token in enumerate(map(bytes, queries)):
            assert tuple(got.get(q, ())) == tuple(sorted(ref.get(token, ())))
