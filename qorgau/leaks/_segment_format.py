"""Byte layout of one leaked-token segment file (``seg-*.qls``); see docs/leaks-index.md.

A segment holds ``n`` distinct ``(token, incident)`` pairs sorted by token bytes, then incident. All integers
are little-endian. The file is four 4096-aligned sections after a 4096-byte header:

    header   magic "QLSEG\\0\\1\\0", version, bucket bits b, n, capacity, section offsets, offset width
    offsets  2**b + 1 unsigned ints (u32, or u64 when capacity >= 2**32): bucket j = entries whose token's
             top b bits equal j occupy [offsets[j], offsets[j+1])
    keys     n  u64: bits [b, b+64) of the token — with the bucket (the top b bits) that is an 88-bit prefix
             for b = 24, at 8 bytes an entry; sorted within each bucket
    incidents n u32: the incident id of each entry
    tokens   n × 32 bytes: the full tokens, read only to confirm a candidate and to merge

``capacity`` >= n sizes the keys and incidents sections (a merge allocates for the sum of its inputs before it
knows how many duplicates it will drop); the unused tail of a section is a hole in a sparse file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"QLSEG\x00\x01\x00"
VERSION = 1
PAGE = 4096
# magic, version, bucket bits, n, capacity, offsets of: bucket offsets, keys, incidents, tokens; offset width
HEADER = struct.Struct("<8sIIQQQQQQI")
MAX_BUCKET_BITS = 24
TOKEN_BYTES = 32
MASK64 = (1 << 64) - 1


def align(value: int) -> int:
    return (value + PAGE - 1) // PAGE * PAGE


def bucket_bits_for(capacity: int, max_bits: int = MAX_BUCKET_BITS) -> int:
    """About 4–8 entries a bucket: a lookup is one bucket read plus a binary search of ~3 steps."""
    return max(0, min(max_bits, capacity.bit_length() - 3))


@dataclass(frozen=True)
class Layout:
    bucket_bits: int
    n: int
    capacity: int
    off_offsets: int
    off_keys: int
    off_incidents: int
    off_tokens: int
    offset_width: int  # 4 or 8 bytes

    @classmethod
    def plan(cls, capacity: int, bucket_bits: int | None = None) -> Layout:
        bits = bucket_bits_for(capacity) if bucket_bits is None else bucket_bits
        width = 4 if capacity < 2**32 else 8
        off_offsets = PAGE
        off_keys = off_offsets + align(((1 << bits) + 1) * width)
        off_incidents = off_keys + align(8 * capacity)
        off_tokens = off_incidents + align(4 * capacity)
        return cls(bits, 0, capacity, off_offsets, off_keys, off_incidents, off_tokens, width)

    def with_n(self, n: int) -> Layout:
        return Layout(self.bucket_bits, n, self.capacity, self.off_offsets, self.off_keys, self.off_incidents,
                      self.off_tokens, self.offset_width)

    @property
    def file_size(self) -> int:
        return self.off_tokens + TOKEN_BYTES * self.n

    def pack(self) -> bytes:
        head = HEADER.pack(MAGIC, VERSION, self.bucket_bits, self.n, self.capacity, self.off_offsets,
                           self.off_keys, self.off_incidents, self.off_tokens, self.offset_width)
        return head + b"\x00" * (PAGE - len(head))

    @classmethod
    def unpack(cls, data: bytes, *, file_size: int, name: str) -> Layout:
        if len(data) < HEADER.size:
            raise ValueError(f"segment {name}: header truncated")
        magic, version, bits, n, cap, o_off, o_keys, o_inc, o_tok, width = HEADER.unpack_from(data)
        if magic != MAGIC or version != VERSION:
            raise ValueError(f"segment {name}: not a version-{VERSION} segment file")
        layout = cls(bits, n, cap, o_off, o_keys, o_inc, o_tok, width)
        expected = cls.plan(cap, bits)
        if (bits > 32 or n > cap or width not in (4, 8) or (o_off, o_keys, o_inc, o_tok, width) !=
                (expected.off_offsets, expected.off_keys, expected.off_incidents, expected.off_tokens,
                 expected.offset_width)):
            raise ValueError(f"segment {name}: inconsistent header")
        if file_size != layout.file_size:
            raise ValueError(f"segment {name}: size {file_size} bytes, header says {layout.file_size}")
        return layout
