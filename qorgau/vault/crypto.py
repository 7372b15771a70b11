"""The vault's cryptographic derivations, in one small place.

* **Blind index** = HMAC-SHA256(organization's blind-index key, ``TYPE:`` + normalized value). Keyed: an
  unkeyed hash of an IIN is reversed by trying the ≈ 9·10⁸ valid IINs in about two minutes on one core,
  in milliseconds when the birth date is known (LEGAL.md § Identifiers). With the key in the key ring
  (wrapped by the master key), a stolen copy of ``vault_lookups`` is a list of random-looking strings.
* **Pseudonym** = ``ps_`` + 26 lowercase letters from HMAC-SHA256(organization's pseudonym key,
  domain ‖ 0x00 ‖ subject public id). Letters only (≈ 122 bits), so it never looks like an IIN, a phone
  or a card to the audit log's personal-data guard; another organization's key gives unlinkable
  pseudonyms for the same person; it cannot be derived from the person's identifiers at all (the
  public id is random), only looked up in the vault.
* **Sealing** = AES-256-GCM under the subject's own data key, in the key ring's ciphertext format
  (``Q1 ‖ len ‖ key id ‖ nonce ‖ ciphertext+tag``) with AAD binding organization, subject and purpose,
  so a sealed blob moved to another subject's row, or another organization's, fails to open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..core.errors import IntegrityFailure
from ..core.keys import CIPHERTEXT_MAGIC, NONCE_BYTES, parse_ciphertext

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
LETTERS = 26  # 26 letters of base 26: log2(26**26) ≈ 122 bits
PSEUDONYM_PREFIX = "ps_"
PSEUDONYM_LENGTH = len(PSEUDONYM_PREFIX) + LETTERS
_SHA256 = hashlib.sha256


# Three base-26 digits at a time from a table: a third of the big-integer divisions of a plain loop.
_TRIPLES = [a + b + c for c in ALPHABET for b in ALPHABET for a in ALPHABET]
_TRIPLE = 26 ** 3


def letters_from_int(number: int, count: int = LETTERS) -> str:
    """``count`` base-26 letters of ``number`` (least significant first)."""
    out = []
    for _ in range((count + 2) // 3):
        number, chunk = divmod(number, _TRIPLE)
        out.append(_TRIPLES[chunk])
    return "".join(out)[:count]


_SPACE = 26 ** LETTERS
_LIMIT = (2 ** 128 // _SPACE) * _SPACE  # rejection bound: uniform over 26**26 from 128 random bits


def random_letters(count: int = LETTERS) -> str:
    """Random lowercase letters: ids that may appear in the audit log (no digit runs, see module doc)."""
    if count != LETTERS:
        return letters_from_int(secrets.randbelow(26 ** count), count)
    while True:
        number = int.from_bytes(secrets.token_bytes(16), "big")
        if number < _LIMIT:
            return letters_from_int(number % _SPACE)


# Bulk random letters: random bytes below 234 (= 9 × 26) are uniform modulo 26, so rejecting bytes 234–255
# and mapping the rest with ``% 26`` gives uniform letters, done in C by ``bytes.translate``.
_ACCEPT = 9 * 26
_REJECT = bytes(range(_ACCEPT, 256))
_TO_LETTER = bytes((ord("a") + b % 26) if b < _ACCEPT else 0 for b in range(256))


def random_letters_many(n: int, count: int = LETTERS) -> list[str]:
    """``n`` random ids of ``count`` lowercase letters each (≈ 4.7 bits per letter: 26 letters ≈ 122 bits),
    from one ``os.urandom`` call — the batch path's public ids and key ids. Same distribution as
    :func:`random_letters`."""
    need = n * count
    pool = b""
    while len(pool) < need:
        # 234/256 of the bytes survive; ask for 10% more than needed so a second round is rare.
        pool += os.urandom((need - len(pool)) * 10 // 9 + 64).translate(None, _REJECT)
    text = pool[:need].translate(_TO_LETTER).decode("ascii")
    return [text[i:i + count] for i in range(0, need, count)]


def blind_index(key: bytes, entity_type: str, normalized: str) -> bytes:
    """HMAC-SHA256(key, ``TYPE:normalized``): 32 bytes."""
    return hmac.digest(key, f"{entity_type}:{normalized}".encode(), "sha256")


def pseudonym(key: bytes, domain: str, public_id: str) -> str:
    digest = hmac.digest(key, domain.encode() + b"\x00" + public_id.encode(), "sha256")
    # 256 bits reduced to 26 base-26 digits: the modulo bias is 2**-134, nothing to see.
    return PSEUDONYM_PREFIX + letters_from_int(int.from_bytes(digest, "big"))


def subject_aad(organization_id: int, public_id: str) -> bytes:
    return b"qorgau-vault/v1\x00org=%d\x00subject=%s\x00purpose=identifiers" % (organization_id, public_id.encode())


def seal(key_id: str, key: bytes, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None) -> bytes:
    """``nonce``: 12 fresh random bytes (the batch path slices them from one ``os.urandom`` call); never
    reuse one — each subject key seals few blobs, all with random nonces."""
    kid = key_id.encode()
    if nonce is None:
        nonce = secrets.token_bytes(NONCE_BYTES)
    elif len(nonce) != NONCE_BYTES:
        raise ValueError("a 12-byte nonce is required")
    return CIPHERTEXT_MAGIC + bytes([len(kid)]) + kid + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key_id: str, key: bytes, blob: bytes, aad: bytes) -> bytes:
    found_id, nonce, body = parse_ciphertext(blob)
    if found_id != key_id:
        raise IntegrityFailure("sealed identifiers were made with another subject's key")
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise IntegrityFailure("sealed identifiers failed authentication") from None
