"""The leaked-token index: immutable sorted segments of ``(token, incident)``, memory-mapped (issue 8).

A token is a 32-byte keyed OPRF output (``qorgau.leaks.oprf``); an incident is a u32 id. The index never
holds identifiers, only tokens, so nothing here is personal data in the clear — still, tokens are never
logged or put in messages.

How it stays consistent (L-PD-LEAK-REGISTER: a committed leak is either in the register or not):

- A segment file is written under a temporary name, fsynced, renamed to ``seg-*.qls`` and only then listed in
  ``MANIFEST``, which is replaced atomically (temp file + fsync + ``os.replace`` + fsync of the directory).
  Readers map exactly the segments the manifest lists, so a segment is fully visible or not at all.
- Files the manifest does not list (a writer killed before publishing, inputs of a merge killed after
  publishing) are garbage; ``collect_garbage`` removes them when no writer is running (``Index.open`` calls it).
- A merge publishes its output and drops its inputs from the manifest in one replacement, then unlinks the
  inputs. On POSIX an unlinked file stays valid for every process that has it mapped, so readers that still
  use the old segments keep answering from them until they ``refresh()``; a reader that read the old manifest
  but had not opened a file yet re-reads the manifest and retries.

Byte layout: ``qorgau/leaks/_segment_format.py``; sharding, memory and bulk (Spark) ingest: docs/leaks-index.md.
"""

from __future__ import annotations

from bisect import bisect_left
import contextlib
import fcntl
import hashlib
import json
import math
import mmap
import os
import secrets
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from qorgau.core.errors import Conflict, IntegrityFailure, InvalidInput
from qorgau.leaks._segment_format import MASK64, PAGE, TOKEN_BYTES, Layout

__all__ = [
    "Index", "Matches", "Merger", "SegmentInfo", "SegmentWriter", "build_segments_from_sorted_partitions",
    "collect_garbage", "merge", "publish_staged", "read_manifest", "stage_partition", "write_segment",
]

MANIFEST = "MANIFEST"
_WRITERS_LOCK = ".writers.lock"
_MANIFEST_LOCK = ".manifest.lock"
_STAGING = "staging"
_SEGMENT_SUFFIX = ".qls"
_TEMP_PREFIXES = (".tmp-", ".run-", MANIFEST + ".tmp-")
# Working memory per entry while sorting: the tokens and incidents, their u64 prefix, the int64 order and
# the gathered piece being written. Used to turn a memory budget into a run length.
_SORT_BYTES_PER_ENTRY = 32 + 4 + 8 + 8 + 16
_MERGE_BYTES_PER_ENTRY = 2 * (32 + 4) + 8 + 8
_PIECE = 1 << 21  # entries gathered and written at a time
_LITTLE = sys.byteorder == "little"
_U64_0 = np.uint64(0)


# ---------------------------------------------------------------------------------------------------------
# Manifest


@dataclass(frozen=True)
class SegmentInfo:
    name: str
    entries: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    generation: int
    segments: tuple[SegmentInfo, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.segments)


def read_manifest(directory: str | os.PathLike[str]) -> Manifest:
    """The published state; an absent manifest is the empty index."""
    path = Path(directory) / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Manifest(0, ())
    try:
        doc = json.loads(raw)
        if doc.get("format") != "qorgau-leaks-index" or doc.get("version") != 1:
            raise ValueError("unknown format")
        segments = tuple(SegmentInfo(str(s["name"]), int(s["entries"]), int(s["bytes"]), str(s["sha256"]))
                         for s in doc["segments"])
        return Manifest(int(doc["generation"]), segments)
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityFailure(f"leak index manifest {path} is unreadable ({type(exc).__name__})",
                               field="manifest") from None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_manifest(directory: Path, manifest: Manifest, *, durable: bool) -> None:
    doc = {"format": "qorgau-leaks-index", "version": 1, "generation": manifest.generation,
           "segments": [{"name": s.name, "entries": s.entries, "bytes": s.bytes, "sha256": s.sha256}
                        for s in manifest.segments]}
    tmp = directory / f"{MANIFEST}.tmp-{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        _write_all(fd, json.dumps(doc, indent=1).encode(), 0)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / MANIFEST)
    if durable:
        _fsync_dir(directory)


@contextlib.contextmanager
def _flock(directory: Path, name: str, mode: int) -> Iterator[bool]:
    """``flock`` on a lock file in the index directory; yields False if a non-blocking lock was refused."""
    fd = os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _publish(directory: Path, add: Sequence[SegmentInfo], remove: Sequence[str], *, durable: bool) -> Manifest:
    with _flock(directory, _MANIFEST_LOCK, fcntl.LOCK_EX):
        current = read_manifest(directory)
        gone = [name for name in remove if name not in current.names]
        if gone:
            raise Conflict("a segment to replace is no longer in the leak index (merged concurrently)",
                           field="segments")
        removed = set(remove)
        segments = tuple(s for s in current.segments if s.name not in removed) + tuple(add)
        manifest = Manifest(current.generation + 1, segments)
        _write_manifest(directory, manifest, durable=durable)
        return manifest


def collect_garbage(directory: str | os.PathLike[str]) -> list[str]:
    """Remove files no manifest lists: half-written segments, spilled runs, merged-away inputs.

    Runs only when no writer holds the directory (a writer's temporary files are not garbage yet); returns
    the names removed, or an empty list if a writer was active.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed: list[str] = []
    with _flock(directory, _WRITERS_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB) as locked:
        if not locked:
            return []
        live = read_manifest(directory).names
        for entry in os.listdir(directory):
            garbage = entry.startswith(_TEMP_PREFIXES) or (
                entry.startswith("seg-") and entry.endswith(_SEGMENT_SUFFIX) and entry not in live)
            if garbage:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(directory / entry)
                removed.append(entry)
        if removed:
            _fsync_dir(directory)
    return removed


# ---------------------------------------------------------------------------------------------------------
# Token arrays


def as_tokens(tokens: object, *, field: str = "tokens") -> np.ndarray:
    """A C-contiguous ``(m, 32)`` uint8 matrix from a matrix, an ``S32``/``V32`` array or a list of bytes."""
    if isinstance(tokens, np.ndarray):
        if tokens.dtype == np.uint8 and tokens.ndim == 2 and tokens.shape[1] == TOKEN_BYTES:
            return np.ascontiguousarray(tokens)
        if tokens.ndim == 1 and tokens.dtype.itemsize == TOKEN_BYTES and tokens.dtype.kind in "SV":
            return np.ascontiguousarray(tokens).view(np.uint8).reshape(-1, TOKEN_BYTES)
        raise InvalidInput(f"{field} must be an (n, 32) uint8 array or an array of 32-byte strings", field=field)
    if isinstance(tokens, (bytes, bytearray, memoryview, str)):
        raise InvalidInput(f"{field} must be a sequence of 32-byte tokens, not one value", field=field)
    items = list(tokens)  # type: ignore[call-overload]
    for item in items:
        if not isinstance(item, (bytes, bytearray)) or len(item) != TOKEN_BYTES:
            raise InvalidInput(f"every item of {field} must be 32 bytes", field=field)
    if not items:
        return np.zeros((0, TOKEN_BYTES), np.uint8)
    return np.frombuffer(b"".join(items), np.uint8).reshape(-1, TOKEN_BYTES).copy()


def _as_incidents(incidents: object, count: int) -> np.ndarray:
    values = np.asarray(incidents)
    if values.ndim == 0:
        values = np.full(count, values)
    if values.shape != (count,) or values.dtype.kind not in "iu":
        raise InvalidInput("incidents must be one integer id or one per token", field="incidents")
    if count and (int(values.min()) < 0 or int(values.max()) > 0xFFFFFFFF):
        raise InvalidInput("incidents must be ids between 0 and 2**32 - 1", field="incidents")
    return values.astype(np.uint32)


def _words(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The token's first and second 64 bits as native u64 (big-endian reading keeps byte order = numeric order)."""
    w = tokens.view(">u8")
    return w[:, 0].astype(np.uint64), w[:, 1].astype(np.uint64)


def _prefix(tokens: np.ndarray) -> np.ndarray:
    """The token's first 64 bits as native u64: the sort key."""
    return tokens.view(">u8")[:, 0].astype(np.uint64)


def _keys(hi: np.ndarray, lo: np.ndarray, bits: int) -> np.ndarray:
    if bits == 0:
        return hi.copy()
    return (hi << np.uint64(bits)) | (lo >> np.uint64(64 - bits))


def _buckets(hi: np.ndarray, bits: int) -> np.ndarray:
    if bits == 0:
        return np.zeros(len(hi), np.intp)
    return (hi >> np.uint64(64 - bits)).astype(np.intp)


def _sort_order(tokens: np.ndarray, incidents: np.ndarray, hi: np.ndarray, *, kind: str | None = None) -> np.ndarray:
    """Indices that sort by (token, incident) with duplicate pairs removed.

    Sorting the 64-bit prefix is the fast path; entries that share a prefix (the same token several times, or
    a rare prefix collision) are ordered by the whole token and the incident in a second, small lexsort.
    """
    order = np.argsort(hi, kind=kind)
    if len(order) < 2:
        return order
    ordered = hi[order]
    tie = ordered[1:] == ordered[:-1]
    del ordered
    if not tie.any():
        return order
    in_run = np.zeros(len(order), bool)
    in_run[1:] |= tie
    in_run[:-1] |= tie
    pos = np.flatnonzero(in_run)
    sub = order[pos]
    w = tokens[sub].view(">u8")
    sub = sub[np.lexsort((incidents[sub], w[:, 3], w[:, 2], w[:, 1], w[:, 0]))]
    order[pos] = sub
    w = tokens[sub].view(">u8")
    inc = incidents[sub]
    same = (w[1:] == w[:-1]).all(axis=1) & (inc[1:] == inc[:-1]) & (pos[1:] == pos[:-1] + 1)
    if same.any():
        order = np.delete(order, pos[1:][same])
    return order


def _write_all(fd: int, data: object, offset: int) -> None:
    view = memoryview(data).cast("B")  # type: ignore[arg-type]
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _read_exact(fd: int, length: int, offset: int) -> bytes:
    chunks = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 30), offset)
        if not chunk:
            raise IntegrityFailure("leak index segment is shorter than its header says", field="segment")
        chunks.append(chunk)
        length -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(8 << 20)
        view = memoryview(buf)
        while True:
            got = fh.readinto(buf)
            if not got:
                break
            digest.update(view[:got])
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Writing one segment file


class _SegmentFile:
    """Appends sorted pieces into a new segment file; ``finish`` writes the bucket offsets and the header last."""

    def __init__(self, path: Path, capacity: int, *, durable: bool) -> None:
        self.path = path
        self.layout = Layout.plan(capacity)
        self.durable = durable
        self.n = 0
        self.counts = np.zeros(1 << self.layout.bucket_bits, np.int64)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self._last: bytes | None = None

    def append(self, tokens: np.ndarray, incidents: np.ndarray, hi: np.ndarray) -> None:
        m = len(tokens)
        if not m:
            return
        lay = self.layout
        if self.n + m > lay.capacity:
            raise RuntimeError("segment capacity exceeded")
        lo = tokens.view(">u8")[:, 1].astype(np.uint64)
        keys = _keys(hi, lo, lay.bucket_bits).astype("<u8", copy=False)
        _write_all(self.fd, np.ascontiguousarray(keys), lay.off_keys + 8 * self.n)
        _write_all(self.fd, np.ascontiguousarray(incidents.astype("<u4", copy=False)), lay.off_incidents + 4 * self.n)
        _write_all(self.fd, np.ascontiguousarray(tokens), lay.off_tokens + TOKEN_BYTES * self.n)
        self.counts += np.bincount(_buckets(hi, lay.bucket_bits), minlength=len(self.counts))
        self.n += m

    def finish(self) -> Layout:
        lay = self.layout.with_n(self.n)
        offsets = np.zeros(len(self.counts) + 1, "<u4" if lay.offset_width == 4 else "<u8")
        offsets[1:] = np.cumsum(self.counts)
        _write_all(self.fd, offsets, lay.off_offsets)
        os.ftruncate(self.fd, lay.file_size)
        _write_all(self.fd, lay.pack(), 0)
        if self.durable:
            os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        return lay

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _write_in_pieces(sink: _SegmentFile, tokens: np.ndarray, incidents: np.ndarray, hi: np.ndarray,
                     order: np.ndarray) -> None:
    for start in range(0, len(order), _PIECE):
        piece = order[start:start + _PIECE]
        sink.append(tokens[piece], incidents[piece], hi[piece])


def _new_name() -> str:
    return f"seg-{time.time_ns():020d}-{secrets.token_hex(4)}{_SEGMENT_SUFFIX}"


def _seal(directory: Path, tmp: Path, entries: int, *, durable: bool, name: str | None = None) -> SegmentInfo:
    """Hash the finished temp file and rename it to its segment name (still unpublished)."""
    size = tmp.stat().st_size
    digest = _sha256_file(tmp)
    name = name or _new_name()
    os.rename(tmp, directory / name)
    if durable:
        _fsync_dir(directory)
    return SegmentInfo(name, entries, size, digest)


# ---------------------------------------------------------------------------------------------------------
# Reading one segment


class Segment:
    """One mapped segment file. Each section is its own read-only ``mmap`` (MADV_RANDOM: a lookup reads a
    page, not a readahead window), so the resident size of keys, incidents and tokens can be told apart."""

    def __init__(self, path: Path, info: SegmentInfo | None = None) -> None:
        self.path = path
        self.name = path.name
        self.info = info
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            try:
                self.layout = Layout.unpack(os.pread(fd, PAGE, 0), file_size=size, name=self.name)
            except ValueError as exc:
                raise IntegrityFailure(f"leak index {exc}", field="segment") from None
            lay = self.layout
            self.n = lay.n
            self.bits = lay.bucket_bits
            self._maps: list[mmap.mmap] = []
            nb = (1 << self.bits) + 1
            self.offsets = self._section(fd, lay.off_offsets, nb * lay.offset_width,
                                         "<u4" if lay.offset_width == 4 else "<u8")
            self.keys = self._section(fd, lay.off_keys, 8 * self.n, "<u8")
            self.incidents = self._section(fd, lay.off_incidents, 4 * self.n, "<u4")
            self.tokens = self._section(fd, lay.off_tokens, TOKEN_BYTES * self.n, np.uint8).reshape(-1, TOKEN_BYTES)
        except BaseException:
            os.close(fd)
            raise
        # Kept open for confirming single hits with pread: a mapped read would fault in a whole large folio
        # of the token column (up to 2 MiB on current kernels) and count it in this process's RSS.
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd)
        if _LITTLE:  # memoryview indexing returns Python ints fast: the single-lookup path
            self._off_mv = memoryview(self.offsets).cast("B").cast("I" if lay.offset_width == 4 else "Q")
            self._keys_mv = memoryview(self.keys).cast("B").cast("Q")
            self._inc_mv = memoryview(self.incidents).cast("B").cast("I")
        else:
            self._off_mv, self._keys_mv, self._inc_mv = self.offsets, self.keys, self.incidents
        self._max_bucket: int | None = None

    def _section(self, fd: int, offset: int, length: int, dtype: object) -> np.ndarray:
        if length == 0:
            self._maps.append(None)  # type: ignore[arg-type]
            return np.zeros(0, dtype)  # type: ignore[call-overload]
        mm = mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=offset)
        if hasattr(mmap, "MADV_RANDOM"):
            mm.madvise(mmap.MADV_RANDOM)
        self._maps.append(mm)
        return np.frombuffer(mm, dtype=dtype)  # type: ignore[call-overload]

    def warm(self) -> None:
        """Fault in offsets, keys and incidents (what lookups need resident); the tokens stay on disk."""
        for mm in self._maps[:3]:
            if mm is not None:
                if hasattr(mmap, "MADV_WILLNEED"):
                    mm.madvise(mmap.MADV_WILLNEED)
                np.frombuffer(mm, np.uint8)[::PAGE].sum()

    @property
    def max_bucket(self) -> int:
        if self._max_bucket is None:
            self._max_bucket = int(np.diff(self.offsets.astype(np.int64)).max()) if len(self.offsets) > 1 else 0
        return self._max_bucket

    def fast_path(self) -> tuple[object, ...]:
        """What ``Index.lookup`` needs per segment: shifts that take the bucket (top b bits) and the key (the
        next 64 bits) from the token's first 128 bits as one int, and the memoryviews."""
        return (128 - self.bits, 64 - self.bits, self._off_mv, self._keys_mv, self._inc_mv, self._fd,
                self.layout.off_tokens)

    def match_many(self, tokens: np.ndarray, hi: np.ndarray, lo: np.ndarray, exact: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(query index, incident) for every entry matching a query token: a merge against the sorted prefixes
        for a batch of at least a sixteenth of the segment, else a binary search inside each query's bucket."""
        m = len(hi)
        if not m or not self.n:
            return np.zeros(0, np.int64), np.zeros(0, np.uint32)
        if m >= max(1 << 16, self.n >> 4):
            qs, ps = self._candidates_by_merge(hi, lo)
        else:
            qs, ps = self._candidates_by_bucket(hi, lo)
        if exact and qs.size:
            order = np.argsort(ps, kind="stable")  # read the token column in file order
            qs, ps = qs[order], ps[order]
            same = (self.tokens[ps] == tokens[qs]).all(axis=1)
            qs, ps = qs[same], ps[same]
            if hasattr(mmap, "MADV_DONTNEED"):  # drop the mapping's pages (they stay in the page cache)
                self._maps[3].madvise(mmap.MADV_DONTNEED)
        return qs.astype(np.int64), self.incidents[ps].astype(np.uint32)

    def prefixes(self) -> np.ndarray:
        """Every entry's 64-bit token prefix (bucket bits + the top of the key), ascending: O(n), not stored."""
        if not self.bits:
            return self.keys.copy()
        counts = np.diff(self.offsets.astype(np.int64))
        out = np.repeat(np.arange(len(counts), dtype=np.uint64) << np.uint64(64 - self.bits), counts)
        out |= self.keys >> np.uint64(self.bits)
        return out

    def _candidates_by_merge(self, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A batch about as large as the segment (the notification join): sort the query prefixes, find the ones
        present in the segment's sorted prefixes in one forward ``searchsorted`` pass (a merge join), then
        resolve only those queries — typically few — by the bucket path."""
        prefixes = self.prefixes()
        sorted_hi = np.sort(hi)
        pos = np.searchsorted(prefixes, sorted_hi)
        np.minimum(pos, len(prefixes) - 1, out=pos)
        present = sorted_hi[prefixes[pos] == sorted_hi]
        del prefixes, sorted_hi, pos
        if not present.size:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        # Back to query indices: a bitmap on the low prefix bits (pseudorandom) passes a few percent of the
        # queries; only those are binary-searched (a searchsorted of every query costs 3× the whole join).
        size = 1 << min(28, max(16, (16 * len(present)).bit_length()))
        low = np.uint64(size - 1)
        bitmap = np.zeros(size, bool)
        bitmap[(present & low).astype(np.intp)] = True
        candidates = np.flatnonzero(bitmap[(hi & low).astype(np.intp)])
        del bitmap
        at = np.searchsorted(present, hi[candidates])
        np.minimum(at, len(present) - 1, out=at)
        chosen = candidates[present[at] == hi[candidates]]
        qs, ps = self._candidates_by_bucket(hi[chosen], lo[chosen])
        return chosen[qs].astype(np.int64), ps

    def _candidates_by_bucket(self, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A batch much smaller than the segment: a bounded binary search inside each query's bucket."""
        key = _keys(hi, lo, self.bits)
        bucket = _buckets(hi, self.bits)
        begin = self.offsets[bucket].astype(np.int64)
        end = self.offsets[bucket + 1].astype(np.int64)
        lo_i = begin.copy()
        hi_i = end.copy()
        active = np.flatnonzero(lo_i < hi_i)
        while active.size:  # lower bound of key in [begin, end)
            mid = (lo_i[active] + hi_i[active]) >> 1
            less = self.keys[mid] < key[active]
            lo_i[active[less]] = mid[less] + 1
            hi_i[active[~less]] = mid[~less]
            active = active[lo_i[active] < hi_i[active]]
        queries: list[np.ndarray] = []
        places: list[np.ndarray] = []
        q = np.flatnonzero(lo_i < end)
        p = lo_i[q]
        while q.size:
            hit = self.keys[p] == key[q]
            q, p = q[hit], p[hit]
            queries.append(q)
            places.append(p)
            p = p + 1
            more = p < end[q]
            q, p = q[more], p[more]
        qs = np.concatenate(queries) if queries else np.zeros(0, np.int64)
        ps = np.concatenate(places) if places else np.zeros(0, np.int64)
        return qs.astype(np.int64), ps.astype(np.int64)

    def position_of_prefix(self, cut: int) -> int:
        """Index of the first entry whose 64-bit token prefix is >= cut (cut in [0, 2**64])."""
        if cut >= 1 << 64:
            return self.n
        bits = self.bits
        bucket = cut >> (64 - bits) if bits else 0
        start, end = int(self.offsets[bucket]), int(self.offsets[bucket + 1])
        probe = ((cut << bits) & MASK64) if bits else cut
        return start + int(np.searchsorted(self.keys[start:end], np.uint64(probe), side="left"))

    def read_rows(self, fd: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Tokens and incidents of [start, stop) read with pread, so a merge does not grow a reader's RSS."""
        count = stop - start
        lay = self.layout
        tokens = np.frombuffer(_read_exact(fd, TOKEN_BYTES * count, lay.off_tokens + TOKEN_BYTES * start),
                               np.uint8).reshape(-1, TOKEN_BYTES)
        incidents = np.frombuffer(_read_exact(fd, 4 * count, lay.off_incidents + 4 * start), "<u4")
        return tokens, incidents.astype(np.uint32)

    def close(self) -> None:
        for view in (self._off_mv, self._keys_mv, self._inc_mv):
            if isinstance(view, memoryview):
                view.release()
        self.offsets = self.keys = self.incidents = self.tokens = None  # type: ignore[assignment]
        self._closer()
        for mm in self._maps:
            if mm is not None:
                with contextlib.suppress(BufferError):
                    mm.close()
        self._maps = []


def _merge_into(sink: _SegmentFile, segments: Sequence[Segment], memory_budget: int) -> None:
    """K-way merge by prefix ranges: each range of every input is read, merged (timsort on sorted runs),
    deduplicated and appended; ranges are sized so one range of all inputs fits the memory budget
    (tokens are pseudorandom, so equal-width prefix ranges hold about equal counts)."""
    total = sum(s.n for s in segments)
    ranges = max(1, math.ceil(total * _MERGE_BYTES_PER_ENTRY / max(memory_budget, 1 << 20)))
    cuts = [(i << 64) // ranges for i in range(ranges)] + [1 << 64]
    fds = [os.open(s.path, os.O_RDONLY) for s in segments]
    try:
        starts = [0] * len(segments)
        for r in range(ranges):
            token_parts, incident_parts = [], []
            for k, seg in enumerate(segments):
                stop = seg.position_of_prefix(cuts[r + 1])
                if stop > starts[k]:
                    t, i = seg.read_rows(fds[k], starts[k], stop)
                    token_parts.append(t)
                    incident_parts.append(i)
                starts[k] = stop
            if not token_parts:
                continue
            tokens = np.concatenate(token_parts)
            incidents = np.concatenate(incident_parts)
            del token_parts, incident_parts
            hi = _prefix(tokens)
            order = _sort_order(tokens, incidents, hi, kind="stable")
            _write_in_pieces(sink, tokens, incidents, hi, order)
    finally:
        for fd in fds:
            os.close(fd)


# ---------------------------------------------------------------------------------------------------------
# Writers


class SegmentWriter:
    """Builds one segment from (token, incident) batches and publishes it atomically on ``commit``.

    Batches are buffered up to ``memory_budget`` bytes of sorting work; beyond that each buffer is sorted and
    spilled to an unpublished run file, and ``commit`` merges the runs (an external sort). Holding the
    directory's writers lock (shared) keeps ``collect_garbage`` away from the temporary files meanwhile.

        with SegmentWriter(directory) as writer:
            writer.add(tokens, incident_id)
        info = writer.info            # None if nothing was added
    """

    def __init__(self, directory: str | os.PathLike[str], *, memory_budget: int = 1 << 30,
                 durable: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.memory_budget = memory_budget
        self.durable = durable
        self.info: SegmentInfo | None = None
        self._tokens: list[np.ndarray] = []
        self._incidents: list[np.ndarray] = []
        self._buffered = 0
        self._runs: list[Path] = []
        self._lock = _flock(self.directory, _WRITERS_LOCK, fcntl.LOCK_SH)
        self._lock.__enter__()
        self._open = True

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None and self._open:
            self.commit()
        else:
            self.abort()

    def add(self, tokens: object, incidents: object) -> None:
        """Add tokens (an ``(n, 32)`` uint8 array, ``S32`` array or list of bytes) with one incident id each
        (or one id for all). A contiguous array is kept by reference until ``commit`` (no copy of a
        10⁸-token batch): do not modify it meanwhile."""
        if not self._open:
            raise Conflict("this segment writer is already committed or aborted", field="writer")
        matrix = as_tokens(tokens)
        ids = _as_incidents(incidents, len(matrix))
        if not len(matrix):
            return
        self._tokens.append(matrix)
        self._incidents.append(ids)
        self._buffered += len(matrix)
        if self._buffered * _SORT_BYTES_PER_ENTRY > self.memory_budget:
            self._spill()

    def _take_buffer(self) -> tuple[np.ndarray, np.ndarray]:
        tokens = np.concatenate(self._tokens) if len(self._tokens) > 1 else self._tokens[0]
        incidents = np.concatenate(self._incidents) if len(self._incidents) > 1 else self._incidents[0]
        self._tokens, self._incidents, self._buffered = [], [], 0
        return tokens, incidents

    def _write_sorted(self, path: Path, tokens: np.ndarray, incidents: np.ndarray, *, durable: bool) -> int:
        hi = _prefix(tokens)
        order = _sort_order(tokens, incidents, hi)
        sink = _SegmentFile(path, len(order), durable=durable)
        try:
            _write_in_pieces(sink, tokens, incidents, hi, order)
            return sink.finish().n
        except BaseException:
            sink.abort()
            raise

    def _spill(self) -> None:
        tokens, incidents = self._take_buffer()
        path = self.directory / f".run-{secrets.token_hex(6)}{_SEGMENT_SUFFIX}"
        self._runs.append(path)
        self._write_sorted(path, tokens, incidents, durable=False)

    def commit(self) -> SegmentInfo | None:
        """Sort, write, fsync, rename and publish; returns the new segment (None if nothing was added)."""
        if not self._open:
            raise Conflict("this segment writer is already committed or aborted", field="writer")
        tmp = self.directory / f".tmp-{secrets.token_hex(6)}{_SEGMENT_SUFFIX}"
        try:
            if self._buffered and self._runs:
                self._spill()
            if self._runs:
                runs = [Segment(path) for path in self._runs]
                sink = _SegmentFile(tmp, sum(r.n for r in runs), durable=self.durable)
                try:
                    _merge_into(sink, runs, self.memory_budget)
                    entries = sink.finish().n
                except BaseException:
                    sink.abort()
                    raise
                finally:
                    for run in runs:
                        run.close()
            elif self._buffered:
                tokens, incidents = self._take_buffer()
                entries = self._write_sorted(tmp, tokens, incidents, durable=self.durable)
                del tokens, incidents
            else:
                self._finish()
                return None
            info = _seal(self.directory, tmp, entries, durable=self.durable)
            try:
                _publish(self.directory, [info], [], durable=self.durable)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.directory / info.name)
                raise
            self.info = info
            return info
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        finally:
            self._finish()

    def abort(self) -> None:
        if self._open:
            self._finish()

    def _finish(self) -> None:
        self._tokens, self._incidents, self._buffered = [], [], 0
        for run in self._runs:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(run)
        self._runs = []
        if self._open:
            self._open = False
            self._lock.__exit__(None, None, None)


def write_segment(directory: str | os.PathLike[str], tokens: object, incidents: object, **options: object
                  ) -> SegmentInfo | None:
    """Write and publish one segment from arrays (``SegmentWriter`` options apply)."""
    writer = SegmentWriter(directory, **options)  # type: ignore[arg-type]
    try:
        writer.add(tokens, incidents)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


def merge(directory: str | os.PathLike[str], names: Sequence[str], *, memory_budget: int = 1 << 30,
          durable: bool = True) -> SegmentInfo:
    """Merge the named live segments into one (duplicates dropped) and publish it in their place in one
    manifest replacement; then unlink the inputs (readers that still map them keep working, POSIX)."""
    directory = Path(directory)
    if len(set(names)) < 2:
        raise InvalidInput("a merge needs at least two distinct segments", field="segments")
    tmp = directory / f".tmp-{secrets.token_hex(6)}{_SEGMENT_SUFFIX}"
    with _flock(directory, _WRITERS_LOCK, fcntl.LOCK_SH):
        manifest = read_manifest(directory)
        by_name = {s.name: s for s in manifest.segments}
        if any(name not in by_name for name in names):
            raise Conflict("a segment to merge is not in the leak index", field="segments")
        inputs = [Segment(directory / name, by_name[name]) for name in names]
        try:
            sink = _SegmentFile(tmp, sum(s.n for s in inputs), durable=durable)
            try:
                _merge_into(sink, inputs, memory_budget)
                entries = sink.finish().n
            except BaseException:
                sink.abort()
                raise
        finally:
            for seg in inputs:
                seg.close()
        info = _seal(directory, tmp, entries, durable=durable)
        try:
            _publish(directory, [info], list(names), durable=durable)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / info.name)
            raise
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / name)
    if durable:
        _fsync_dir(directory)
    return info


class Merger:
    """The background merge policy (size tiers, like an LSM tree): segments whose entry counts fall in the
    same power-of-``fanout`` tier are merged once ``fanout`` of them exist; beyond ``max_segments`` the
    smallest are merged regardless. Fewer segments = fewer probes per lookup."""

    def __init__(self, directory: str | os.PathLike[str], *, fanout: int = 4, max_segments: int = 12,
                 memory_budget: int = 1 << 30, interval: float = 30.0, durable: bool = True) -> None:
        if fanout < 2:
            raise InvalidInput("fanout must be at least 2", field="fanout")
        self.directory = Path(directory)
        self.fanout = fanout
        self.max_segments = max(2, max_segments)
        self.memory_budget = memory_budget
        self.interval = interval
        self.durable = durable
        self.errors: list[Exception] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def plan(self, manifest: Manifest) -> list[str]:
        """The names to merge next, or an empty list."""
        tiers: dict[int, list[SegmentInfo]] = {}
        for seg in manifest.segments:
            tiers.setdefault(int(math.log(max(seg.entries, 1), self.fanout)), []).append(seg)
        for tier in sorted(tiers):
            if len(tiers[tier]) >= self.fanout:
                return [s.name for s in tiers[tier]]
        if len(manifest.segments) > self.max_segments:
            smallest = sorted(manifest.segments, key=lambda s: s.entries)
            return [s.name for s in smallest[:len(manifest.segments) - self.max_segments + 1]]
        return []

    def run_once(self) -> SegmentInfo | None:
        names = self.plan(read_manifest(self.directory))
        if not names:
            return None
        try:
            return merge(self.directory, names, memory_budget=self.memory_budget, durable=self.durable)
        except Conflict:
            return None  # another merger took these inputs; the next round re-plans

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="leaks-merger", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while not self._stop.is_set() and self.run_once() is not None:
                    pass
            except Exception as exc:  # keep merging later; the error is kept for the operator, not logged with data
                self.errors.append(exc)
            self._stop.wait(self.interval)


# ---------------------------------------------------------------------------------------------------------
# Bulk ingest (Spark): executors stage segment files, the driver publishes them in one manifest replacement


def stage_partition(directory: str | os.PathLike[str], job: str, tokens: object, incidents: object, *,
                    partition: int | None = None, durable: bool = True) -> SegmentInfo | None:
    """Executor side: write one partition (typically one token-prefix range, already sorted) as a segment
    file in ``<directory>/staging/<job>/``; nothing is visible until ``publish_staged``.

    With ``partition`` (Spark's partition id) the file name is fixed, so a retried or speculative task
    attempt replaces the earlier attempt's file (atomic rename) instead of adding a second copy."""
    if not job or not job.replace("-", "").replace("_", "").isalnum():
        raise InvalidInput("job must be letters, digits, '-' or '_'", field="job")
    if partition is not None and (not isinstance(partition, int) or partition < 0):
        raise InvalidInput("partition must be a non-negative integer", field="partition")
    matrix = as_tokens(tokens)
    ids = _as_incidents(incidents, len(matrix))
    if not len(matrix):
        return None
    staging = Path(directory) / _STAGING / job
    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / f".tmp-{secrets.token_hex(6)}{_SEGMENT_SUFFIX}"
    hi = _prefix(matrix)
    order = _sort_order(matrix, ids, hi, kind="stable")  # O(n) on sorted input
    sink = _SegmentFile(tmp, len(order), durable=durable)
    try:
        _write_in_pieces(sink, matrix, ids, hi, order)
        entries = sink.finish().n
    except BaseException:
        sink.abort()
        raise
    name = None if partition is None else f"seg-{job}-p{partition:06d}{_SEGMENT_SUFFIX}"
    return _seal(staging, tmp, entries, durable=durable, name=name)


def publish_staged(directory: str | os.PathLike[str], job: str, *, durable: bool = True) -> list[SegmentInfo]:
    """Driver side: move every staged segment of ``job`` into the index and publish them all at once."""
    directory = Path(directory)
    staging = directory / _STAGING / job
    infos: list[SegmentInfo] = []
    with _flock(directory, _WRITERS_LOCK, fcntl.LOCK_SH):
        live = read_manifest(directory).names
        for entry in sorted(os.listdir(staging)):
            if not (entry.startswith("seg-") and entry.endswith(_SEGMENT_SUFFIX)):
                continue
            if entry in live or (directory / entry).exists():
                raise Conflict("a staged segment of this job is already in the leak index", field="job")
            seg = Segment(staging / entry)
            n = seg.n
            seg.close()
            os.rename(staging / entry, directory / entry)
            infos.append(SegmentInfo(entry, n, (directory / entry).stat().st_size, _sha256_file(directory / entry)))
        if durable:
            _fsync_dir(directory)
        if infos:
            _publish(directory, infos, [], durable=durable)
    for entry in os.listdir(staging):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging / entry)
    with contextlib.suppress(OSError):
        staging.rmdir()
    return infos


def build_segments_from_sorted_partitions(directory: str | os.PathLike[str],
                                          partitions: Iterable[tuple[object, object]], *, job: str | None = None,
                                          durable: bool = True) -> list[SegmentInfo]:
    """What a Spark bulk ingest does, in one process: stage each (tokens, incidents) partition, publish all.

    In Spark, ``stage_partition`` runs in ``mapPartitions`` on the executors (shared filesystem) and
    ``publish_staged`` on the driver after the job succeeded; see docs/leaks-index.md.
    """
    job = job or secrets.token_hex(8)
    for number, (tokens, incidents) in enumerate(partitions):
        stage_partition(directory, job, tokens, incidents, partition=number, durable=durable)
    if not (Path(directory) / _STAGING / job).exists():
        return []
    return publish_staged(directory, job, durable=durable)


# ---------------------------------------------------------------------------------------------------------
# Reading the index


class Matches(NamedTuple):
    """Vectorized lookup result: ``incidents[k]`` was found for query ``query[k]`` (sorted by query, then
    incident, no duplicates)."""

    query: np.ndarray
    incidents: np.ndarray


class Index:
    """Read side: maps the manifest's segments. Thread-safe for lookups; ``refresh`` swaps the segment tuple.

    ``exact=True`` (default) confirms every prefix match against the full 32-byte token in the token column
    (one 32-byte pread per hit); with ``exact=False`` an 88-bit prefix decides (false positive per lookup about
    n / 2**88 for b = 24 bucket bits; see docs/leaks-index.md) and the token column is never touched.
    """

    def __init__(self, directory: Path, *, exact: bool) -> None:
        self.directory = directory
        self.exact = exact
        self._segments: tuple[Segment, ...] = ()
        self._fast: tuple[tuple[object, ...], ...] = ()
        self._generation = -1
        self._refresh_lock = threading.Lock()

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, exact: bool = True, verify: bool = False,
             collect: bool = True) -> Index:
        """Open an index directory (created if absent), collecting garbage first unless a writer is active.
        ``verify=True`` checks every segment's size and sha256 against the manifest (reads every byte)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        if collect:
            collect_garbage(path)
        index = cls(path, exact=exact)
        index.refresh()
        if verify:
            index.verify()
        return index

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def segments(self) -> tuple[SegmentInfo, ...]:
        return tuple(s.info for s in self._segments if s.info is not None)

    @property
    def entries(self) -> int:
        return sum(s.n for s in self._segments)

    def refresh(self) -> bool:
        """Pick up the current manifest; segments still listed are kept mapped. True if anything changed."""
        with self._refresh_lock:
            for _attempt in range(20):
                manifest = read_manifest(self.directory)
                if manifest.generation == self._generation:
                    return False
                current = {s.name: s for s in self._segments}
                fresh: list[Segment] = []
                try:
                    for info in manifest.segments:
                        seg = current.get(info.name)
                        if seg is None:
                            seg = Segment(self.directory / info.name, info)
                            if seg.path.stat().st_size != info.bytes or seg.n != info.entries:
                                raise IntegrityFailure(f"leak index segment {info.name} does not match the manifest",
                                                       field="segment")
                        fresh.append(seg)
                except FileNotFoundError:
                    continue  # merged away and unlinked after we read the manifest: read it again
                self._fast = tuple(seg.fast_path() for seg in fresh if seg.n)
                self._segments = tuple(fresh)  # old segments stay mapped while a lookup holds them
                self._generation = manifest.generation
                return True
            raise Conflict("the leak index kept changing while it was being opened", field="manifest")

    def verify(self) -> None:
        for seg in self._segments:
            info = seg.info
            if info is None or _sha256_file(seg.path) != info.sha256:
                raise IntegrityFailure(f"leak index segment {seg.name} fails its sha256", field="segment")

    def warm(self) -> None:
        for seg in self._segments:
            seg.warm()

    def lookup(self, token: bytes) -> tuple[int, ...]:
        """The incidents whose leak contained this token, ascending.

        The hot path (goal: >= 200,000/s in-process): one 128-bit integer from the token's first 16 bytes,
        then per segment two bucket offsets and a C ``bisect`` over the mapped keys, all through
        memoryviews (Python ints, no numpy scalar overhead); a hit is confirmed with one 32-byte ``pread``."""
        if type(token) is not bytes:
            if not isinstance(token, (bytes, bytearray)):
                raise InvalidInput("token must be 32 bytes", field="token")
            token = bytes(token)
        if len(token) != TOKEN_BYTES:
            raise InvalidInput("token must be 32 bytes", field="token")
        x = int.from_bytes(token[:16], "big")
        exact = self.exact
        found: list[int] | None = None
        pread = os.pread
        for shift_bucket, shift_key, off, keys, incidents, fd, base in self._fast:
            bucket = x >> shift_bucket
            start = off[bucket]
            end = off[bucket + 1]
            if start == end:
                continue
            key = (x >> shift_key) & MASK64
            i = bisect_left(keys, key, start, end)
            while i < end and keys[i] == key:
                if not exact or pread(fd, TOKEN_BYTES, base + TOKEN_BYTES * i) == token:
                    if found is None:
                        found = [incidents[i]]
                    else:
                        found.append(incidents[i])
                i += 1
        if found is None:
            return ()
        if len(found) == 1:
            return (found[0],)
        return tuple(sorted(set(found)))

    def lookup_many(self, tokens: object, *, segments: Sequence[str] | None = None) -> Matches:
        """Every (query index, incident) pair; ``segments`` restricts the search to the named segments (the
        notification join of a new segment against subscriber tokens)."""
        matrix = as_tokens(tokens)
        hi, lo = _words(matrix)
        chosen = self._segments if segments is None else tuple(s for s in self._segments if s.name in set(segments))
        if segments is not None and len(chosen) != len(set(segments)):
            raise InvalidInput("a named segment is not in the leak index", field="segments")
        qs, incs = [], []
        for seg in chosen:
            q, inc = seg.match_many(matrix, hi, lo, self.exact)
            qs.append(q)
            incs.append(inc)
        if not qs:
            return Matches(np.zeros(0, np.int64), np.zeros(0, np.uint32))
        q = np.concatenate(qs)
        inc = np.concatenate(incs)
        if len(chosen) > 1 and q.size:
            pairs = np.unique((q.astype(np.uint64) << np.uint64(32)) | inc.astype(np.uint64))
            return Matches((pairs >> np.uint64(32)).astype(np.int64), (pairs & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        order = np.lexsort((inc, q))
        return Matches(q[order], inc[order])

    def contains(self, tokens: object) -> np.ndarray:
        """A boolean per token: does it appear in any incident."""
        matrix = as_tokens(tokens)
        hit = np.zeros(len(matrix), bool)
        hit[self.lookup_many(matrix).query] = True
        return hit

    def contains_any(self, tokens: object) -> bool:
        """Does any of these tokens appear in any incident."""
        return bool(self.lookup_many(tokens).query.size)

    def close(self) -> None:
        segments, self._segments = self._segments, ()
        self._fast = ()
        self._generation = -1
        for seg in segments:
            seg.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Index({str(self.directory)!r}, segments={len(self._segments)}, entries={self.entries})"

