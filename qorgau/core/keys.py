"""Keys: a master key (behind a :class:`KeyProvider`) wraps data keys; data keys encrypt data.

Envelope encryption, AES-256-GCM everywhere. Every ciphertext names the data key that made it, and
every wrapped data key names the master key that wrapped it, so rotating the master key only re-wraps
the (small) data keys and never touches the data. Destroying a data key (crypto-shredding) makes every
copy of what it encrypted unreadable at once, backups included.

The file provider keeps the master keys in ``DATA_DIR/master.key`` (mode 0600). An HSM or cloud KMS
implements the same four methods.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, String, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base, Database, utcnow
from .errors import IntegrityFailure, NotFound

KEY_BYTES = 32
NONCE_BYTES = 12
CIPHERTEXT_MAGIC = b"Q1"


class KeyFileError(RuntimeError):
    """The master key file is missing, unreadable or too open; the message names the file, not keys."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    master_key_id: str
    blob: bytes  # nonce || AES-GCM(master, data key)

    def __repr__(self) -> str:
        return f"WrappedKey(master_key_id={self.master_key_id!r}, blob=<{len(self.blob)} bytes>)"


class KeyProvider(Protocol):
    """What qorgau needs from a key custodian (file, HSM, KMS)."""

    @property
    def active_key_id(self) -> str: ...

    def wrap(self, key: bytes, context: bytes) -> WrappedKey: ...

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes: ...

    def rotate(self) -> str:
        """Create a new active master key; older ones stay usable for unwrapping until retired."""
        ...

    def retire(self, key_id: str) -> None:
        """Forget an inactive master key once nothing is wrapped by it any more."""
        ...

    def key_ids(self) -> list[str]: ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class FileKeyProvider:
    """Master keys in a JSON file with mode 0600, replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._created: dict[str, str] = {}
        self._active = ""
        self._load()

    def __repr__(self) -> str:
        return f"FileKeyProvider(path={str(self.path)!r}, keys={len(self._keys)})"

    @classmethod
    def create(cls, path: Path) -> "FileKeyProvider":
        """Create the key file if it does not exist (never overwrites an existing one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            key_id = _new_master_id()
            doc = {"version": 1, "active": key_id, "keys": {key_id: _key_record(secrets.token_bytes(KEY_BYTES))}}
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return cls(path)
            with os.fdopen(fd, "w") as fh:
                json.dump(doc, fh)
                fh.flush()
                os.fsync(fh.fileno())
        return cls(path)

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise KeyFileError(f"master key file {self.path} does not exist; run `qorgau init`") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"master key file {self.path} is accessible by group/others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {self.path}`"
            )
        try:
            doc = json.loads(self.path.read_text())
            keys = {kid: base64.b64decode(rec["key"]) for kid, rec in doc["keys"].items()}
            created = {kid: rec.get("created", "") for kid, rec in doc["keys"].items()}
            active = doc["active"]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"master key file {self.path} is malformed ({type(exc).__name__})") from None
        if active not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
            raise KeyFileError(f"master key file {self.path} is inconsistent")
        self._keys, self._created, self._active = keys, created, active

    def _save(self) -> None:
        doc = {
            "version": 1,
            "active": self._active,
            "keys": {kid: {"key": _b64(k), "created": self._created.get(kid, "")} for kid, k in self._keys.items()},
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    @property
    def active_key_id(self) -> str:
        return self._active

    def key_ids(self) -> list[str]:
        return list(self._keys)

    def wrap(self, key: bytes, context: bytes) -> WrappedKey:
        nonce = secrets.token_bytes(NONCE_BYTES)
        kid = self._active
        blob = nonce + AESGCM(self._keys[kid]).encrypt(nonce, key, kid.encode() + b"|" + context)
        return WrappedKey(kid, blob)

    def wrap_many(self, keys: Sequence[bytes], contexts: Sequence[bytes]) -> list[WrappedKey]:
        """:meth:`wrap` for a batch, with one cipher object (optional; :class:`KeyRing` uses it when present)."""
        kid = self._active
        cipher = AESGCM(self._keys[kid])
        prefix = kid.encode() + b"|"
        out = []
        for key, context in zip(keys, contexts, strict=True):
            nonce = secrets.token_bytes(NONCE_BYTES)
            out.append(WrappedKey(kid, nonce + cipher.encrypt(nonce, key, prefix + context)))
        return out

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        master = self._keys.get(wrapped.master_key_id)
        if master is None:
            raise IntegrityFailure(f"master key {wrapped.master_key_id} is not available")
        nonce, body = wrapped.blob[:NONCE_BYTES], wrapped.blob[NONCE_BYTES:]
        try:
            return AESGCM(master).decrypt(nonce, body, wrapped.master_key_id.encode() + b"|" + context)
        except InvalidTag:
            raise IntegrityFailure("wrapped key failed authentication") from None

    def rotate(self) -> str:
        with self._lock:
            kid = _new_master_id()
            self._keys[kid] = secrets.token_bytes(KEY_BYTES)
            self._created[kid] = _now_iso()
            self._active = kid
            self._save()
            return kid

    def retire(self, key_id: str) -> None:
        with self._lock:
            if key_id == self._active:
                raise ValueError("the active master key cannot be retired")
            if self._keys.pop(key_id, None) is not None:
                self._created.pop(key_id, None)
                self._save()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _new_master_id() -> str:
    return "mk-" + uuid.uuid4().hex[:16]


def _key_record(key: bytes) -> dict[str, str]:
    return {"key": _b64(key), "created": _now_iso()}


class DataKey(Base):
    """A data key, stored only wrapped by a master key. ``wrapped is None`` means crypto-shredded."""

    __tablename__ = "data_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64), index=True)
    master_key_id: Mapped[str | None] = mapped_column(String(40), index=True)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    destroyed_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"DataKey(id={self.id!r}, purpose={self.purpose!r}, destroyed={self.destroyed_at is not None})"


class KeyRing:
    """Data keys in the database, wrapped by the provider's master keys."""

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return f"KeyRing(provider={self.provider!r})"

    def create_data_key(self, session: Session, purpose: str, key_id: str | None = None) -> str:
        key_id = key_id or "dk-" + uuid.uuid4().hex
        wrapped = self.provider.wrap(secrets.token_bytes(KEY_BYTES), key_id.encode())
        session.add(DataKey(id=key_id, purpose=purpose, master_key_id=wrapped.master_key_id, wrapped=wrapped.blob))
        session.flush()
        return key_id

    def data_key(self, session: Session, key_id: str) -> bytes:
        row = session.get(DataKey, key_id)
        if row is None:
            raise NotFound(f"data key {key_id} does not exist", field="key_id")
        if row.wrapped is None or row.master_key_id is None:
            raise IntegrityFailure(f"data key {key_id} was destroyed")
        return self.provider.unwrap(WrappedKey(row.master_key_id, row.wrapped), key_id.encode())

    def get_or_create(self, session: Session, key_id: str, purpose: str) -> bytes:
        if session.get(DataKey, key_id) is None:
            self.create_data_key(session, purpose, key_id=key_id)
        return self.data_key(session, key_id)

    def encrypt(self, session: Session, key_id: str, plaintext: bytes, aad: bytes = b"") -> bytes:
        """``Q1 || len(key id) || key id || nonce || AES-256-GCM(ciphertext+tag)``."""
        key = self.data_key(session, key_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        kid = key_id.encode()
        return CIPHERTEXT_MAGIC + bytes([len(kid)]) + kid + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)

    def decrypt(self, session: Session, blob: bytes, aad: bytes = b"") -> bytes:
        key_id, nonce, body = parse_ciphertext(blob)
        try:
            return AESGCM(self.data_key(session, key_id)).decrypt(nonce, body, aad)
        except InvalidTag:
            raise IntegrityFailure("ciphertext failed authentication") from None

    def create_data_keys(self, session: Session, purpose: str, key_ids: Sequence[str]) -> list[bytes]:
        """Create many data keys with one multi-row INSERT; returns the plaintext keys, in order.

        The batch path of the identity vault (a key per subject): one INSERT per key costs more than
        wrapping the key. The plaintext keys are returned so the caller can use them at once instead
        of unwrapping what it just wrapped; they are never stored unwrapped.
        """
        if not key_ids:
            return []
        keys = [secrets.token_bytes(KEY_BYTES) for _ in key_ids]
        contexts = [key_id.encode() for key_id in key_ids]
        wrap_many = getattr(self.provider, "wrap_many", None)
        wrapped = (wrap_many(keys, contexts) if wrap_many is not None
                   else [self.provider.wrap(key, context) for key, context in zip(keys, contexts)])
        # Driver-level executemany: SQLAlchemy's per-row parameter processing doubles the cost here.
        conn = session.connection()
        sqlite = conn.dialect.name == "sqlite"
        p = "?" if sqlite else "%s"
        now = utcnow()
        stamp = now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") if sqlite else now
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(
                f"INSERT INTO data_keys (id, purpose, master_key_id, wrapped, created_at) VALUES ({p}, {p}, {p}, {p}, {p})",
                [(key_id, purpose, w.master_key_id, w.blob, stamp) for key_id, w in zip(key_ids, wrapped)])
        finally:
            cursor.close()
        return keys

    def data_keys(self, session: Session, key_ids: Iterable[str]) -> dict[str, bytes]:
        """Unwrap many data keys, reading them with one query per 500 ids.

        Missing and destroyed (crypto-shredded) keys are simply absent from the result; a key that
        fails to unwrap raises :class:`IntegrityFailure` like :meth:`data_key`.
        """
        wanted = list(dict.fromkeys(key_ids))
        found: dict[str, bytes] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = session.execute(
                select(DataKey.id, DataKey.master_key_id, DataKey.wrapped)
                .where(DataKey.id.in_(chunk), DataKey.wrapped.is_not(None))
            ).all()
            for key_id, master_key_id, wrapped in rows:
                found[key_id] = self.provider.unwrap(WrappedKey(master_key_id, bytes(wrapped)), key_id.encode())
        return found

    def destroy_data_key(self, session: Session, key_id: str) -> None:
        """Crypto-shred: forget the wrapped key; everything it encrypted becomes unreadable."""
        result = session.execute(
            update(DataKey)
            .where(DataKey.id == key_id, DataKey.wrapped.is_not(None))
            .values(wrapped=None, master_key_id=None, destroyed_at=utcnow())
        )
        if result.rowcount == 0 and session.get(DataKey, key_id) is None:
            raise NotFound(f"data key {key_id} does not exist", field="key_id")


def verify_master_keys(session: Session, provider: KeyProvider) -> int:
    """Check that the provider's master keys open this database's data keys; returns how many were tried.

    One data key per master key id in use is unwrapped. A wrong, replaced or foreign master key file
    is reported here, at start-up, with a message that names the master key ids (never key bytes),
    instead of as an "authentication failed" deep inside the first request that needs a key.
    Raises :class:`KeyFileError`.
    """
    rows = session.execute(
        select(DataKey.master_key_id, func.min(DataKey.id))
        .where(DataKey.wrapped.is_not(None))
        .group_by(DataKey.master_key_id)
    ).all()
    available = set(provider.key_ids())
    where = getattr(provider, "path", "the key provider")
    for master_key_id, key_id in rows:
        if master_key_id not in available:
            raise KeyFileError(
                f"master key {master_key_id} wraps data keys in this database but is not in {where}: "
                "wrong or replaced master key file (restore the right one from its backup)")
        row = session.get(DataKey, key_id)
        assert row is not None and row.wrapped is not None and row.master_key_id is not None
        try:
            provider.unwrap(WrappedKey(row.master_key_id, bytes(row.wrapped)), row.id.encode())
        except IntegrityFailure:
            raise KeyFileError(
                f"master key {master_key_id} in {where} does not open this database's data keys "
                "(authentication failed): wrong master key file for this database") from None
    return len(rows)


def parse_ciphertext(blob: bytes) -> tuple[str, bytes, bytes]:
    if len(blob) < 3 or blob[:2] != CIPHERTEXT_MAGIC:
        raise IntegrityFailure("not a qorgau ciphertext")
    n = blob[2]
    key_id = blob[3 : 3 + n].decode("ascii", errors="replace")
    nonce = blob[3 + n : 3 + n + NONCE_BYTES]
    return key_id, nonce, blob[3 + n + NONCE_BYTES :]


@dataclass(frozen=True)
class RotationReport:
    new_master_key_id: str
    rewrapped: int
    retired: list[str]


def rotate_master_key(db: Database, provider: KeyProvider, batch: int = 500) -> RotationReport:
    """Make a new master key active, re-wrap every data key with it, then retire the old ones.

    Safe to interrupt: until the last step the old master keys stay in the provider, so every data key
    can still be unwrapped; running it again finishes the job.
    """
    new_id = provider.rotate()
    rewrapped = 0
    while True:
        with db.transaction() as session:
            rows = session.scalars(
                select(DataKey)
                .where(DataKey.wrapped.is_not(None), DataKey.master_key_id != new_id)
                .limit(batch)
            ).all()
            for row in rows:
                assert row.master_key_id is not None and row.wrapped is not None
                plain = provider.unwrap(WrappedKey(row.master_key_id, row.wrapped), row.id.encode())
                wrapped = provider.wrap(plain, row.id.encode())
                row.master_key_id, row.wrapped = wrapped.master_key_id, wrapped.blob
            rewrapped += len(rows)
        if len(rows) < batch:
            break
    with db.reader() as session:
        in_use = set(session.scalars(select(DataKey.master_key_id).where(DataKey.wrapped.is_not(None)).distinct()))
    retired = [kid for kid in provider.key_ids() if kid != new_id and kid not in in_use]
    for kid in retired:
        provider.retire(kid)
    return RotationReport(new_id, rewrapped, retired)
