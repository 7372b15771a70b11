"""The audit log's Merkle tree is RFC 6962's, bit for bit.

Expected values come from published data, never from the code under test:
Trillian ``merkle/testonly/constants.go`` (leaves, node hashes, roots) and transparency-dev/merkle
``proof/verify_test.go`` (inclusion and consistency proofs) and ``proof/proof_test.go`` (which
stored nodes make up each proof). Property tests compare against the RFC's recursive
definitions, re-written here from the RFC text.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qorgau.core import merkle
from qorgau.core.merkle import (
    EMPTY_ROOT,
    append_batch,
    append_leaf,
    append_nodes_needed,
    consistency_proof,
    consistency_proof_nodes,
    inclusion_proof,
    inclusion_proof_nodes,
    leaf_hash,
    mth,
    node_hash,
    root_from_leaf_hashes,
    root_from_nodes,
    root_nodes_needed,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

# --- Published test data ----------------------------------------------------------------------

# Trillian merkle/testonly LeafInputs().
LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# Trillian merkle/testonly RootHashes(), indexed by tree size.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# Trillian merkle/testonly NodeHashes(): [level][index] for every perfect subtree of the 8 leaves.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# transparency-dev/merkle proof/verify_test.go inclusionProofs, converted from its 1-based leaf
# numbers to 0-based indices: (index, tree_size, proof).
INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# transparency-dev/merkle proof/verify_test.go consistencyProofs: (first, second, proof).
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# transparency-dev/merkle proof/proof_test.go TestInclusion: which stored nodes make up a proof.
INCLUSION_NODE_IDS = [
    (1, 0, []),
    (2, 0, [(0, 1)]),
    (2, 1, [(0, 0)]),
    (3, 1, [(0, 0), (0, 2)]),
    (7, 0, [(0, 1), (1, 1), (0, 6), (1, 2)]),
    (7, 1, [(0, 0), (1, 1), (0, 6), (1, 2)]),
    (7, 2, [(0, 3), (1, 0), (0, 6), (1, 2)]),
    (7, 3, [(0, 2), (1, 0), (0, 6), (1, 2)]),
    (7, 4, [(0, 5), (0, 6), (2, 0)]),
    (7, 5, [(0, 4), (0, 6), (2, 0)]),
    (7, 6, [(1, 2), (2, 0)]),
    (4, 2, [(0, 3), (1, 0)]),
    (5, 3, [(0, 2), (1, 0), (0, 4)]),
    (6, 3, [(0, 2), (1, 0), (1, 2)]),
    (6, 4, [(0, 5), (2, 0)]),
    (15, 10, [(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)]),
    (31, 24, [(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)]),
    (95, 81, [(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)]),
]

# transparency-dev/merkle proof/proof_test.go TestConsistency.
CONSISTENCY_NODE_IDS = [
    (1, 2, [(0, 1)]),
    (1, 4, [(0, 1), (1, 1)]),
    (1, 6, [(0, 1), (1, 1), (1, 2)]),
    (2, 3, [(0, 2)]),
    (2, 8, [(1, 1), (2, 1)]),
    (3, 7, [(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)]),
    (4, 7, [(0, 6), (1, 2)]),
    (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)]),
    (6, 7, [(1, 2), (0, 6), (2, 0)]),
    (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)]),
    (1, 1, []),
    (2, 2, []),
    (3, 3, []),
    (4, 4, []),
    (5, 5, []),
    (7, 7, []),
    (8, 8, []),
    (2, 4, [(1, 1)]),
    (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)]),
    (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)]),
    (4, 6, [(1, 2)]),
    (1, 7, [(0, 1), (1, 1), (0, 6), (1, 2)]),
    (10, 15, [(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)]),
    (24, 31, [(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)]),
    (81, 95, [(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)]),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


# --- Helpers ----------------------------------------------------------------------------------


def stored_nodes(leaf_hashes: list[bytes]) -> dict[tuple[int, int], bytes]:
    """What the storage layer would hold after appending these leaves one by one."""
    table: dict[tuple[int, int], bytes] = {}
    for i, lh in enumerate(leaf_hashes):
        for level, index, value in append_leaf(i, lh, lambda lv, ix: table[(lv, ix)]):
            table[(level, index)] = value
    return table


def never_read(level: int, index: int) -> bytes:
    raise AssertionError(f"unexpected read of stored node ({level}, {index})")


def fetch(table: dict[tuple[int, int], bytes], refs: list[tuple[int, int]]) -> dict:
    """One query: exactly the requested rows, so a proof can't lean on anything else."""
    return {ref: table[ref] for ref in refs}


def entries(n: int, salt: bytes = b"") -> list[bytes]:
    return [salt + i.to_bytes(4, "big") for i in range(n)]


def flip_bit(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


class Rfc6962:
    """RFC 6962 §2.1 MTH, §2.1.1 PATH and §2.1.2 PROOF/SUBPROOF, transcribed over leaf hashes."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.leaves = leaf_hashes
        self.mth = lru_cache(maxsize=None)(self._mth)

    @staticmethod
    def split(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k  # the largest power of two smaller than n

    def _mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 1:
            return self.leaves[lo]
        k = self.split(n)
        return node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = self.split(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = self.split(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]


LEAF_HASHES = [leaf_hash(x) for x in LEAVES]
TABLE = stored_nodes(LEAF_HASHES)


# --- Hashing and roots ------------------------------------------------------------------------


def test_the_empty_log_has_the_sha256_of_nothing_as_its_root():
    assert EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()
    assert mth([]) == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert root_from_nodes(0, {}) == EMPTY_ROOT
    assert root_nodes_needed(0) == []


def test_leaf_and_node_hashes_carry_the_rfc_domain_prefixes():
    assert leaf_hash(b"") == ROOTS[1]
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


@pytest.mark.parametrize("size", range(9))
def test_roots_of_the_reference_tree_match_the_published_values(size):
    assert mth(LEAVES[:size]) == ROOTS[size]
    assert root_from_leaf_hashes(LEAF_HASHES[:size]) == ROOTS[size]
    assert root_from_nodes(size, fetch(TABLE, root_nodes_needed(size))) == ROOTS[size]


def test_appending_the_eight_leaves_stores_exactly_the_published_perfect_nodes():
    expected = {
        (level, index): value
        for level, row in enumerate(NODE_HASHES)
        for index, value in enumerate(row)
    }
    assert TABLE == expected
    assert {(lv, ix): v for lv, ix, v in append_batch(0, LEAF_HASHES, never_read)} == expected


def test_the_root_of_a_log_is_made_of_one_stored_node_per_binary_digit_of_its_size():
    assert root_nodes_needed(7) == [(2, 0), (1, 2), (0, 6)]
    assert root_nodes_needed(8) == [(3, 0)]
    assert root_nodes_needed(1_000_000) == [
        (lv, (1_000_000 >> lv) - 1) for lv in range(20, -1, -1) if 1_000_000 >> lv & 1
    ]


# --- Inclusion proofs -------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_proofs_match_the_published_vectors(index, size, proof):
    got = inclusion_proof(index, size, fetch(TABLE, inclusion_proof_nodes(index, size)))
    assert got == proof
    assert verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("size", "index", "refs"), INCLUSION_NODE_IDS)
def test_inclusion_proofs_read_the_same_stored_nodes_as_transparency_dev(size, index, refs):
    assert inclusion_proof_nodes(index, size) == refs


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS[1:])
def test_a_tampered_inclusion_proof_is_rejected(index, size, proof):
    # Probes from transparency-dev's corruptInclusionProof.
    leaf, root = LEAF_HASHES[index], ROOTS[size]
    probes = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (b"WrongLeaf", index, size, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, SOME_HASH),
        (leaf, index, size, [*proof, b""], root),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [b"", *proof], root),
        (leaf, index, size, [root, *proof], root),
        (leaf, index, size, proof[:-1], root),
    ]
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((leaf, index, size, wrong, root))
    accepted = [p for p in probes if verify_inclusion(*p)]
    assert accepted == []


def test_a_single_entry_log_proves_its_entry_with_an_empty_proof():
    lh = leaf_hash(b"data")
    assert verify_inclusion(lh, 0, 1, [], lh)
    assert not verify_inclusion(b"", 0, 1, [], lh)
    assert not verify_inclusion(lh, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], b"")  # wrong hash size


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_nonsense_inclusion_claims_are_rejected(index, size):
    assert not verify_inclusion(SOME_HASH, index, size, [], b"")
    assert not verify_inclusion(b"", index, size, [], EMPTY_ROOT)
    assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (8, 7), (-1, 3)])
def test_asking_for_a_proof_of_an_entry_beyond_the_log_is_an_error(index, size):
    with pytest.raises(ValueError):
        inclusion_proof_nodes(index, size)


# --- Consistency proofs -----------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY_PROOFS)
def test_consistency_proofs_match_the_published_vectors(first, second, proof):
    got = consistency_proof(first, second, fetch(TABLE, consistency_proof_nodes(first, second)))
    assert got == proof
    assert verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


@pytest.mark.parametrize(("first", "second", "refs"), CONSISTENCY_NODE_IDS)
def test_consistency_proofs_read_the_same_stored_nodes_as_transparency_dev(first, second, refs):
    assert consistency_proof_nodes(first, second) == refs


@pytest.mark.parametrize(
    ("first", "second", "proof"), [p for p in CONSISTENCY_PROOFS if p[2]]
)
def test_a_tampered_consistency_proof_is_rejected(first, second, proof):
    # Probes from transparency-dev's corruptConsistencyProof.
    r1, r2 = ROOTS[first], ROOTS[second]
    probes = [
        (first - 1, second, r1, r2, proof),
        (first + 1, second, r1, r2, proof),
        (first ^ 2, second, r1, r2, proof),
        (first, second * 2, r1, r2, proof),
        (first, second // 2, r1, r2, proof),
        (first, second, b"WrongRoot", r2, proof),
        (first, second, r1, b"WrongRoot", proof),
        (first, second, r2, r1, proof),
        (first, second, r1, r2, []),
        (first, second, r1, r2, [*proof, b""]),
        (first, second, r1, r2, [*proof, r1]),
        (first, second, r1, r2, [*proof, r2]),
        (first, second, r1, r2, [b"", *proof]),
        (first, second, r1, r2, [r1, *proof]),
        (first, second, r1, r2, [r2, *proof]),
        (first, second, r1, r2, [proof[0], *proof]),
        (first, second, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((first, second, r1, r2, wrong))
    accepted = [p for p in probes if verify_consistency(*p)]
    assert accepted == []


@pytest.mark.parametrize(
    ("first", "second", "root1", "root2", "proof", "ok"),
    [
        (0, 0, b"r1", b"r2", [], False),
        (1, 1, b"r1", b"r2", [], False),
        (0, 0, b"r1", b"r1", [], True),  # nothing happened
        (0, 1, b"r1", b"r2", [], True),  # the empty log is a prefix of every log
        (1, 1, b"r2", b"r2", [], True),
        (1, 0, b"r1", b"r2", [], False),  # logs don't shrink
        (2, 1, b"r1", b"r2", [], False),
        (1, 2, b"r1", b"r2", [], False),  # growth needs a proof
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),  # roots match but proof isn't empty
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_trivial_consistency_claims_follow_transparency_dev(first, second, root1, root2, proof, ok):
    assert verify_consistency(first, second, root1, root2, proof) is ok


def test_asking_for_a_consistency_proof_from_a_bigger_to_a_smaller_log_is_an_error():
    with pytest.raises(ValueError):
        consistency_proof_nodes(5, 0)
    with pytest.raises(ValueError):
        consistency_proof_nodes(9, 8)


# --- Appending ---------------------------------------------------------------------------------


def test_appending_a_leaf_reads_only_the_left_siblings_it_completes():
    reads = []

    def get(level, index):
        reads.append((level, index))
        return TABLE[(level, index)]

    nodes = append_leaf(7, LEAF_HASHES[7], get)
    assert reads == [(0, 6), (1, 2), (2, 0)]
    assert nodes == [
        (0, 7, NODE_HASHES[0][7]),
        (1, 3, NODE_HASHES[1][3]),
        (2, 1, NODE_HASHES[2][1]),
        (3, 0, NODE_HASHES[3][0]),
    ]
    assert append_leaf(6, LEAF_HASHES[6], get) == [(0, 6, NODE_HASHES[0][6])]


def test_an_empty_batch_completes_nothing():
    assert append_batch(5, [], never_read) == []
    assert append_nodes_needed(5, 0) == []


# --- Properties ---------------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=300)


@settings(max_examples=40, deadline=None)
@given(size=sizes, salt=st.binary(max_size=8))
def test_every_entry_of_any_log_has_an_inclusion_proof_equal_to_the_rfc_path(size, salt):
    leaves = [leaf_hash(e) for e in entries(size, salt)]
    table = stored_nodes(leaves)
    ref = Rfc6962(leaves)
    root = root_from_nodes(size, fetch(table, root_nodes_needed(size)))
    assert root == ref.mth(0, size) == root_from_leaf_hashes(leaves)
    for index in range(size):
        proof = inclusion_proof(index, size, fetch(table, inclusion_proof_nodes(index, size)))
        assert proof == ref.path(index, 0, size)
        assert verify_inclusion(leaves[index], index, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), salt=st.binary(max_size=8))
def test_any_older_log_is_proven_a_prefix_of_any_newer_log(data, salt):
    second = data.draw(st.integers(min_value=1, max_value=300), label="second")
    first = data.draw(st.integers(min_value=0, max_value=second), label="first")
    leaves = [leaf_hash(e) for e in entries(second, salt)]
    table = stored_nodes(leaves)
    ref = Rfc6962(leaves)
    proof = consistency_proof(first, second, fetch(table, consistency_proof_nodes(first, second)))
    if 0 < first < second:
        assert proof == ref.proof(first, second)
    else:
        assert proof == []
    first_root = root_from_leaf_hashes(leaves[:first])
    second_root = root_from_leaf_hashes(leaves)
    assert verify_consistency(first, second, first_root, second_root, proof)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_single_flipped_bit_in_an_inclusion_proof_leaf_or_root_fails_verification(data):
    size = data.draw(st.integers(min_value=1, max_value=300), label="size")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    leaves = [leaf_hash(e) for e in entries(size)]
    table = stored_nodes(leaves)
    root = root_from_leaf_hashes(leaves)
    proof = inclusion_proof(index, size, fetch(table, inclusion_proof_nodes(index, size)))
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    assert not verify_inclusion(flip_bit(leaves[index], bit), index, size, proof, root)
    assert not verify_inclusion(leaves[index], index, size, proof, flip_bit(root, bit))
    if proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
        wrong = list(proof)
        wrong[i] = flip_bit(wrong[i], bit)
        assert not verify_inclusion(leaves[index], index, size, wrong, root)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_single_flipped_bit_in_a_consistency_proof_or_root_fails_verification(data):
    second = data.draw(st.integers(min_value=2, max_value=300), label="second")
    first = data.draw(st.integers(min_value=1, max_value=second - 1), label="first")
    leaves = [leaf_hash(e) for e in entries(second)]
    table = stored_nodes(leaves)
    r1, r2 = root_from_leaf_hashes(leaves[:first]), root_from_leaf_hashes(leaves)
    proof = consistency_proof(first, second, fetch(table, consistency_proof_nodes(first, second)))
    bit = data.draw(st.integers(min_value=0, max_value=255), label="bit")
    i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
    wrong = list(proof)
    wrong[i] = flip_bit(wrong[i], bit)
    assert not verify_consistency(first, second, r1, r2, wrong)
    assert not verify_consistency(first, second, flip_bit(r1, bit), r2, proof)
    assert not verify_consistency(first, second, r1, flip_bit(r2, bit), proof)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.integers(min_value=0, max_value=70), max_size=12))
def test_appending_in_batches_stores_the_same_nodes_as_appending_one_by_one(batches):
    total = sum(batches)
    leaves = [leaf_hash(e) for e in entries(total)]
    one_by_one = stored_nodes(leaves)

    table: dict[tuple[int, int], bytes] = {}
    start = 0
    for count in batches:
        needed = append_nodes_needed(start, count)
        reads: list[tuple[int, int]] = []

        def get(level, index):
            reads.append((level, index))
            return table[(level, index)]

        new = append_batch(start, leaves[start : start + count], get)
        assert reads == needed  # the storage can prefetch exactly these in one query
        refs = [(lv, ix) for lv, ix, _ in new]
        assert refs == sorted(refs)
        assert len(set(refs)) == len(refs)
        assert not set(refs) & table.keys()  # perfect nodes are written once, never updated
        table.update({(lv, ix): v for lv, ix, v in new})
        start += count
    assert table == one_by_one


@settings(max_examples=50, deadline=None)
@given(size=st.integers(min_value=0, max_value=300))
def test_the_reference_mth_over_entries_agrees_with_the_fast_rebuild(size):
    data = entries(size, b"audit")
    assert mth(data) == root_from_leaf_hashes([leaf_hash(d) for d in data])


def test_proofs_in_a_million_entry_log_need_about_two_nodes_per_level():
    size = 1_000_000
    for index in (0, 1, 524_287, 524_288, 999_998, 999_999):
        refs = inclusion_proof_nodes(index, size)
        assert len(set(refs)) == len(refs) <= 2 * size.bit_length()
        for level, i in refs:  # every ref is a complete perfect subtree of the log
            assert (i + 1) << level <= size
    refs = consistency_proof_nodes(777_777, size)
    assert len(refs) <= 2 * size.bit_length()
    assert all((i + 1) << level <= size for level, i in refs)


def test_module_exports_what_it_documents():
    for name in merkle.__all__:
        assert hasattr(merkle, name)
