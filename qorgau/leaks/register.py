"""The register's shared pieces: identifier kinds and their normalization, the OPRF key, index tokens, the index.

Every part of the leak register (ingest, citizen lookups and subscriptions, operator screening) turns an
identifier into the same 32-byte **index token**:

    index_token = VOPRF(k, "{kind}:{normalized value}")[:32]

* ``kind`` is one of :data:`KINDS` (``iin``, ``phone``, ``email``); the value is normalized first
  (:func:`normalize`: IIN checked by its checksum and birth date, phone to E.164, email lower-cased and
  IDNA-encoded), so ``8 (701) 234-56-78`` and ``+77012345678`` are one token.
* ``k`` is the register's secret key, derived (RFC 9497 §3.2.1 DeriveKeyPair) from a platform data key
  ``dk-leaks-oprf-v1`` that the key provider wraps like every data key. The mode is VOPRF, so a bank or telco
  that screens blinded identifiers can verify every evaluation against the published public key
  (:attr:`LeakKeys.public_key`) and is sure it gets the same tokens as everyone else.
* The full OPRF output is 64 bytes (SHA-512); the index keeps the first 32 (256 bits: collisions impossible in
  practice, and half the memory). Screening clients truncate the same way (:func:`index_token`).

Nothing here logs or puts a value in an exception: errors name the kind and the field only.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import InvalidInput
from ..core.platform import shared
from ..core.ratelimit import RateLimiter
from ..identifiers import IdentifierError, parse_iin
from ..identifiers.email_address import mask_email, normalize_email
from ..identifiers.iin import mask_iin
from ..identifiers.phone import mask_phone, normalize_phone
from . import oprf
from .segments import Index

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = ["KEY_VERSION", "KINDS", "LeakKeys", "index_directory", "index_token", "leak_index_for", "leak_keys_for",
           "leak_limiter_for",
           "mask", "normalize", "try_normalize"]

KINDS: tuple[str, ...] = ("iin", "phone", "email")
KEY_VERSION = 1
_KEY_ID = f"dk-leaks-oprf-v{KEY_VERSION}"
_KEY_PURPOSE = "leak-register-oprf"
_KEY_INFO = b"qorgau leak register v1"
TOKEN_BYTES = 32


def normalize(kind: str, raw: str, *, field: str = "value") -> str:
    """The canonical form of one identifier, or :class:`InvalidInput` naming ``field`` (never the value)."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(f"{field} must be a non-empty {kind}", field=field)
    try:
        if kind == "iin":
            return parse_iin(raw.strip()).value
        if kind == "phone":
            return normalize_phone(raw.strip())
        return normalize_email(raw.strip())
    except IdentifierError as exc:
        raise InvalidInput(f"{field} is not a valid {kind}: {exc.reason}", field=field) from None


def try_normalize(kind: str, raw: str) -> str | None:
    """:func:`normalize`, or None when the value is not a valid identifier of ``kind`` (ingest's fast path)."""
    try:
        return normalize(kind, raw)
    except InvalidInput:
        return None


def mask(kind: str, normalized: str) -> str:
    """A display form that does not reveal the identifier (``8501**…**34``, ``+7 701 *** ** 78``, ``a***@mail.kz``)."""
    if kind == "iin":
        return mask_iin(normalized)
    if kind == "phone":
        return mask_phone(normalized)
    if kind == "email":
        return mask_email(normalized)
    raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")


def index_token(oprf_output: bytes) -> bytes:
    """The 32-byte index token of a 64-byte OPRF output (what a screening client keeps after ``finalize``)."""
    if not isinstance(oprf_output, (bytes, bytearray)) or len(oprf_output) != oprf.NH:
        raise InvalidInput(f"an OPRF output is {oprf.NH} bytes", field="output")
    return bytes(oprf_output[:TOKEN_BYTES])


class LeakKeys:
    """The register's VOPRF server, built once from the platform data key (created on first use)."""

    def __init__(self, platform: Platform) -> None:
        with platform.db.transaction() as session:
            seed = platform.keyring.get_or_create(session, _KEY_ID, _KEY_PURPOSE)
        self.server = oprf.VoprfServer.derive(seed[:oprf.NS], _KEY_INFO)
        self.key_version = KEY_VERSION

    def __repr__(self) -> str:
        return f"LeakKeys(version={self.key_version})"

    @property
    def public_key(self) -> bytes:
        return self.server.public_key

    def token(self, kind: str, normalized: str) -> bytes:
        """The index token of one normalized identifier."""
        return index_token(oprf.token(self.server, kind, normalized))

    def tokens(self, kind: str, normalized: Iterable[str]) -> list[bytes]:
        """Index tokens of many normalized identifiers of one kind, in order.

        Large batches are split over a thread per core: libsodium's scalar multiplication (≈ 80% of the cost)
        runs outside the GIL (cffi releases it), so ingest scales with cores while each core stays bound by
        libsodium (bench/leaks.py, "ingest")."""
        values = list(normalized)
        workers = _workers()
        if workers < 2 or len(values) < _PARALLEL_MIN:
            return [out[:TOKEN_BYTES] for out in oprf.tokens(self.server, kind, values)]
        step = -(-len(values) // workers)
        chunks = [values[i:i + step] for i in range(0, len(values), step)]
        parts = _pool().map(lambda chunk: oprf.tokens(self.server, kind, chunk), chunks)
        return [out[:TOKEN_BYTES] for part in parts for out in part]

    def blind_evaluate(self, blinded: Sequence[bytes]) -> tuple[list[bytes], bytes]:
        """Evaluate blinded elements for a screening client: evaluated elements and one batch DLEQ proof."""
        return self.server.blind_evaluate_batch(list(blinded))


_PARALLEL_MIN = 4096
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _workers() -> int:
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1), 8)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="leak-oprf")
        return _POOL


def leak_keys_for(platform: Platform) -> LeakKeys:
    return shared(platform, "_leak_keys", LeakKeys)


def index_directory(platform: Platform) -> Path:
    """Where the token index lives: ``<data_dir>/leaks/index-v<key version>`` (a key rotation builds a new one)."""
    return Path(platform.settings.data_dir) / "leaks" / f"index-v{KEY_VERSION}"


_INDEX_LOCK = threading.Lock()


def leak_index_for(platform: Platform) -> Index:
    """The platform's reader of the token index (opened on first use). Call ``refresh()`` after committing a
    segment in this process; other processes pick new segments up on their next ``refresh()``."""
    return shared(platform, "_leak_index", lambda p: Index.open(index_directory(p)))


def leak_limiter_for(platform: Platform) -> RateLimiter:
    """The register's one rate limiter; each part configures its scopes (``leaks.citizen_lookup``,
    ``leaks.screen_evaluate``…) when its service is built. See :mod:`qorgau.core.ratelimit`."""
    return shared(platform, "_leak_limiter", lambda p: RateLimiter())
