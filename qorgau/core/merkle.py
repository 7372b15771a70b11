"""RFC 6962 Merkle tree arithmetic for the append-only audit log — pure functions, no I/O.

The audit log must let anyone holding a signed tree head check that an entry is in the log
(inclusion proof) and that today's log extends yesterday's without rewriting it (consistency
proof). We use exactly the Certificate Transparency tree (RFC 6962 §2.1, RFC 9162 §2.1) so the
proofs can be checked with any CT/transparency-dev verifier, not only with qorgau.

Storage model (kept by the audit storage layer, not here): the database holds the hash of every
*perfect* subtree — node ``(level, index)`` covers leaves ``[index·2**level, (index+1)·2**level)``,
level 0 being the leaf hashes. Perfect nodes never change once complete, so they are written once
and never updated (an append-only table is easy to reason about and to replicate). Nodes on the
right edge of a tree whose size is not a power of two are *not* stored: their hash depends on the
tree size, so they are recomputed from the perfect nodes under them ("ephemeral" nodes, in
transparency-dev's words).

Every proof function therefore comes in two halves so the storage needs one round trip:

1. ``*_nodes(...)`` says which perfect nodes are needed (a list of ``(level, index)``);
2. the storage fetches them all in one query and passes a mapping to the assembling function.

Naming follows the RFCs: ``leaf_hash`` = HASH(0x00 || data), ``node_hash`` = HASH(0x01 || l || r);
the domain-separation prefixes stop a leaf from being passed off as an inner node (second
preimage attack, RFC 6962 §2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256 as _sha256
from itertools import repeat

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Node",
    "NodeRef",
    "append_batch",
    "append_leaf",
    "append_nodes_needed",
    "consistency_proof",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "mth",
    "node_hash",
    "root_from_leaf_hashes",
    "root_from_nodes",
    "root_nodes_needed",
    "verify_consistency",
    "verify_inclusion",
]

NodeRef = tuple[int, int]
"""A perfect subtree ``(level, index)``; covers leaves ``[index << level, (index + 1) << level)``."""

Node = tuple[int, int, bytes]
"""A perfect subtree with its hash, ``(level, index, hash)`` — one row of the node table."""

GetNode = Callable[[int, int], bytes]
"""Reads a stored perfect node: ``get_node(level, index) -> hash``."""

HASH_SIZE = 32
EMPTY_ROOT: bytes = _sha256(b"").digest()
"""MTH({}) — the root of the empty log (RFC 6962 §2.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d): the hash of one log entry."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an inner node."""
    return _sha256(_NODE_PREFIX + left + right).digest()


# --------------------------------------------------------------------------------------------
# Appending: which perfect nodes does a new leaf (or a batch of leaves) complete?
# --------------------------------------------------------------------------------------------


def append_leaf(index: int, leaf: bytes, get_node: GetNode) -> list[Node]:
    """Perfect nodes completed by appending leaf number ``index`` (0-based) with hash ``leaf``.

    The result starts with the leaf itself ``(0, index, leaf)``, followed by every parent that
    the leaf completes, bottom-up. Leaf ``index`` completes one parent per trailing 1-bit of
    ``index``; each needs its left sibling, which is already stored and read via ``get_node``.
    For many leaves at once prefer :func:`append_batch`, which reads at most one node per level.
    """
    out = [(0, index, leaf)]
    h = leaf
    level = 0
    i = index
    while i & 1:
        h = _sha256(_NODE_PREFIX + get_node(level, i - 1) + h).digest()
        level += 1
        i >>= 1
        out.append((level, i, h))
    return out


def append_nodes_needed(start_index: int, count: int) -> list[NodeRef]:
    """Stored nodes :func:`append_batch` will read when appending ``count`` leaves at ``start_index``.

    These are the left siblings that lie before the batch — a subset of the perfect subtrees
    that make up the tree of size ``start_index`` — at most one per level, so the storage can
    fetch them in a single query before calling :func:`append_batch`.
    """
    if start_index < 0 or count < 0:
        raise ValueError("start_index and count must be non-negative")
    needed: list[NodeRef] = []
    end = start_index + count
    level = 0
    lo = start_index
    while (end >> (level + 1)) > (lo >> 1):  # at least one new parent one level up
        if lo & 1:
            needed.append((level, lo - 1))
        lo >>= 1
        level += 1
    return needed


def append_batch(start_index: int, leaf_hashes: Sequence[bytes], get_node: GetNode) -> list[Node]:
    """All perfect nodes completed by appending ``leaf_hashes`` as leaves ``start_index, …``.

    Why a batch path: the audit log must sustain tens of thousands of appends per second, and
    one-by-one appending costs a database read per completed parent. Here the whole batch is
    hashed level by level in memory; only the left siblings outside the batch (at most one per
    level, see :func:`append_nodes_needed`) are read through ``get_node``.

    Returns ``(level, index, hash)`` tuples ordered by level, then index — exactly the nodes that
    appending the same leaves one by one with :func:`append_leaf` would produce. With
    ``start_index=0`` and no stored nodes this also rebuilds every perfect node of a log
    (``get_node`` is then never called).
    """
    if start_index < 0:
        raise ValueError("start_index must be non-negative")
    count = len(leaf_hashes)
    if not count:
        return []
    out: list[Node] = list(zip(repeat(0), range(start_index, start_index + count), leaf_hashes))
    end = start_index + count
    row = list(leaf_hashes)  # row[k] is node (level, lo + k)
    lo = start_index
    level = 0
    sha = _sha256
    prefix = _NODE_PREFIX
    while True:
        parent_lo = lo >> 1
        parent_hi = end >> (level + 1)
        if parent_hi <= parent_lo:
            return out
        if lo & 1:  # the first new parent's left child was stored by an earlier append
            row.insert(0, get_node(level, lo - 1))
            lo -= 1
        # ``row`` now starts at an even index; pair it up (a trailing odd node waits for later).
        row = [sha(prefix + a + b).digest() for a, b in zip(row[::2], row[1::2])]
        level += 1
        lo = parent_lo
        out.extend(zip(repeat(level), range(parent_lo, parent_hi), row))


# --------------------------------------------------------------------------------------------
# Which perfect nodes make up a proof or a root
# --------------------------------------------------------------------------------------------


def _range_nodes(begin: int, end: int) -> list[NodeRef]:
    """The perfect subtrees tiling leaves ``[begin, end)``, left to right (greedy, minimal)."""
    out: list[NodeRef] = []
    while begin < end:
        level = (end - begin).bit_length() - 1  # biggest block that fits…
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)  # …and is aligned at begin
        out.append((level, begin >> level))
        begin += 1 << level
    return out


def _plan(index: int, level: int, size: int) -> tuple[list[NodeRef], int, int]:
    """Nodes proving that perfect node ``(level, index)`` is in the tree of ``size`` leaves.

    Follows transparency-dev/merkle ``proof.nodes``: find the *fork*, the lowest ancestor of the
    node whose right neighbour is cut by the tree's right edge. Below the fork every sibling is
    a complete perfect node. The cut neighbour is the ephemeral node: its hash is rebuilt from
    the perfect nodes tiling ``[fork_end, size)``, listed smallest first so that a left fold
    gives the RFC 6962 right-leaning shape. Then come the perfect nodes tiling ``[0, fork_begin)``
    — the left siblings further up — smallest (closest to the leaf) first.

    Returns ``(refs, begin, end)``: ``refs[0]`` is the node itself; ``refs[begin:end]`` are the
    pieces of the ephemeral node, folded into one proof element (a single piece is used as is).
    """
    inner = (index ^ (size >> level)).bit_length() - 1
    fork_level = level + inner
    fork_index = index >> inner
    fork_begin = fork_index << fork_level
    fork_end = (fork_index + 1) << fork_level

    refs: list[NodeRef] = [(level, index)]
    append = refs.append
    i = index
    for lv in range(level, fork_level):
        append((lv, i ^ 1))
        i >>= 1
    begin = len(refs)
    right = _range_nodes(fork_end, size)
    right.reverse()
    refs += right
    end = len(refs)
    left = _range_nodes(0, fork_begin)
    left.reverse()
    refs += left
    return refs, begin, end


def _assemble(refs: list[NodeRef], begin: int, end: int, nodes: Mapping[NodeRef, bytes]) -> list[bytes]:
    hashes = [nodes[r] for r in refs]
    if end - begin > 1:
        h = hashes[begin]
        for piece in hashes[begin + 1 : end]:
            h = _sha256(_NODE_PREFIX + piece + h).digest()
        hashes[begin:end] = [h]
    return hashes


def _inclusion_plan(index: int, tree_size: int) -> tuple[list[NodeRef], int, int]:
    if not 0 <= index < tree_size:
        raise ValueError(f"index {index} is out of range for tree size {tree_size}")
    refs, begin, end = _plan(index, 0, tree_size)
    return refs[1:], begin - 1, end - 1  # the verifier already has the leaf


def _consistency_plan(first: int, second: int) -> tuple[list[NodeRef], int, int]:
    if not 0 <= first <= second:
        raise ValueError(f"tree sizes must satisfy 0 <= first <= second (got {first}, {second})")
    if first == 0 or first == second:
        return [], 0, 0  # nothing to prove (RFC 9162 §2.1.4: empty proof)
    # The biggest perfect subtree ending at ``first``; the proof is its hash plus its inclusion
    # path in the tree of size ``second``.
    level = (first & -first).bit_length() - 1
    index = (first - 1) >> level
    refs, begin, end = _plan(index, level, second)
    if index == 0:  # ``first`` is a power of two: that node *is* the old root, the client has it
        return refs[1:], begin - 1, end - 1
    return refs, begin, end


def inclusion_proof_nodes(index: int, tree_size: int) -> list[NodeRef]:
    """Perfect nodes the storage must fetch to prove leaf ``index`` is in the tree of ``tree_size``."""
    return _inclusion_plan(index, tree_size)[0]


def inclusion_proof(index: int, tree_size: int, nodes: Mapping[NodeRef, bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(index, D[tree_size]) built from the fetched perfect ``nodes``.

    ``nodes`` must contain every ref from :func:`inclusion_proof_nodes` (extra entries are
    ignored). Elements are ordered leaf-to-root, as RFC 6962 and RFC 9162 verifiers expect.
    """
    refs, begin, end = _inclusion_plan(index, tree_size)
    return _assemble(refs, begin, end, nodes)


def consistency_proof_nodes(first: int, second: int) -> list[NodeRef]:
    """Perfect nodes the storage must fetch to prove the tree of ``first`` leaves is a prefix of
    the tree of ``second`` leaves. Empty when ``first`` is 0 or equals ``second``."""
    return _consistency_plan(first, second)[0]


def consistency_proof(first: int, second: int, nodes: Mapping[NodeRef, bytes]) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(first, D[second]) built from the fetched perfect ``nodes``."""
    refs, begin, end = _consistency_plan(first, second)
    return _assemble(refs, begin, end, nodes)


def root_nodes_needed(tree_size: int) -> list[NodeRef]:
    """Perfect nodes whose hashes determine the root of the tree of ``tree_size`` leaves.

    One per 1-bit of ``tree_size``, largest first; empty for the empty tree.
    """
    if tree_size < 0:
        raise ValueError("tree_size must be non-negative")
    return _range_nodes(0, tree_size)


def root_from_nodes(tree_size: int, nodes: Mapping[NodeRef, bytes]) -> bytes:
    """MTH(D[tree_size]) from the perfect nodes listed by :func:`root_nodes_needed`.

    The tree of ``n`` leaves is the perfect subtrees of ``n``'s binary digits, joined right to
    left: MTH = H(P1, H(P2, … H(Pk-1, Pk))).
    """
    refs = root_nodes_needed(tree_size)
    if not refs:
        return EMPTY_ROOT
    h = nodes[refs[-1]]
    for ref in reversed(refs[:-1]):
        h = _sha256(_NODE_PREFIX + nodes[ref] + h).digest()
    return h


# --------------------------------------------------------------------------------------------
# Full rebuilds: the recursive reference and the fast iterative version
# --------------------------------------------------------------------------------------------


def mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash over raw entries, written as the RFC defines it.

    This is the reference: slow (O(n log n), recursive) but obviously right. Tests and the
    independent ``audit verify`` cross-check use it; production code uses the faster functions.
    """
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two smaller than n
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a log given its leaf hashes, in O(n) and without recursion.

    Hashes level by level, pairing neighbours; an unpaired last node is carried up unchanged.
    That yields the RFC 6962 tree because its left subtrees are always perfect. Rebuilding a
    10⁶-entry log is ~10⁶ SHA-256 calls — one to two seconds of CPython.
    """
    row = list(leaf_hashes)
    if not row:
        return EMPTY_ROOT
    sha = _sha256
    prefix = _NODE_PREFIX
    while len(row) > 1:
        carry = row[-1] if len(row) & 1 else None
        row = [sha(prefix + a + b).digest() for a, b in zip(row[::2], row[1::2])]
        if carry is not None:
            row.append(carry)
    return row[0]


# --------------------------------------------------------------------------------------------
# Client-side verification (RFC 9162 §2.1.3.2 and §2.1.4.2)
# --------------------------------------------------------------------------------------------


def _all_hash_sized(hashes: Sequence[bytes]) -> bool:
    return all(len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True iff ``proof`` shows the leaf with hash ``leaf_hash`` sits at ``index`` in the tree of
    ``tree_size`` leaves whose root is ``root`` (RFC 9162 §2.1.3.2, step by step).

    Returns False rather than raising: a bad proof is an expected answer, not a bug.
    """
    if not 0 <= index < tree_size:
        return False
    if len(leaf_hash) != HASH_SIZE or len(root) != HASH_SIZE or not _all_hash_sized(proof):
        return False
    fn = index
    sn = tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False  # proof is longer than the path
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:  # right edge: skip levels where our node has no right sibling
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff ``proof`` shows the tree of ``first`` leaves (``first_root``) is a prefix of the
    tree of ``second`` leaves (``second_root``) — RFC 9162 §2.1.4.2.

    Edge cases follow transparency-dev: equal sizes need an empty proof and equal roots; the
    empty tree is a prefix of every tree and needs an empty proof.
    """
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    if len(first_root) != HASH_SIZE or len(second_root) != HASH_SIZE or not _all_hash_sized(proof):
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # ``first`` is a power of two: its root is a node of the new tree
        path.insert(0, first_root)
    fn = first - 1
    sn = second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
