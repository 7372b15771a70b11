"""The audit log: an append-only RFC 6962 Merkle tree in the database.

Every state change in every module calls :func:`record` inside its own transaction, so the change and
its audit entry commit or roll back together. An entry holds ids, pseudonyms and a digest of the
details — never raw personal data (:func:`assert_no_personal_data` refuses it), so crypto-shredding a
subject never breaks the log.

Storage: ``audit_entries`` (entry id = leaf index), ``audit_nodes`` (the hash of every *perfect*
subtree, level 0 being the leaf hashes), ``audit_state`` (tree size; its row lock serializes appends),
``audit_tree_heads`` (signed tree heads, Ed25519 key held by the key provider). Perfect-subtree hashes
never change once written, so any inclusion or consistency proof needs O(log n) of them, fetched in one
query. :func:`verify` rebuilds the tree from the entries themselves and checks it against the stored
nodes and every signed head: an altered, inserted or removed entry is reported.
"""

from __future__ import annotations

import hashlib
import secrets
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from json.encoder import encode_basestring as _json_string  # the encoder's own str escaping (ensure_ascii=False)
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..identifiers import is_valid_card, is_valid_iin
from . import merkle
from .db import Base, Database, TenantScoped, tenant_of, utcnow
from .errors import InvalidInput, NotFound

SIGNING_KEY_ID = "dk-audit-signing-v1"
STH_CONTEXT = b"qorgau-sth/v1\n"


class AuditEntry(TenantScoped, Base):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    # Nullable: platform-level entries (key rotation, tree signing) belong to no tenant.
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True, nullable=True)  # type: ignore[assignment]
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    details_digest: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"AuditEntry(id={self.id}, action={self.action!r}, object={self.object_type}:{self.object_id})"


class AuditNode(Base):
    """Hash of the perfect subtree (level, index); primary key ``index << 6 | level``."""

    __tablename__ = "audit_nodes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditState(Base):
    __tablename__ = "audit_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger)


class AuditTreeHead(Base):
    __tablename__ = "audit_tree_heads"

    tree_size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(40))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


def node_key(level: int, index: int) -> int:
    return (index << 6) | level


# --- the personal-data guard --------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"(?<!\d)(?:\+?\d[\d \-()]{8,22}\d)(?!\d)")
# The look-behind lets a match start only where a run of non-space, non-@ characters starts. Same
# verdict (a match inside a run extends left to the run's start), but search() no longer re-scans the
# run from every position: without it "a" * 5000 + "@" + "b" * 5000 takes 0.9 s inside the append lock.
_EMAIL = re.compile(r"(?<![^\s@])[^\s@]+@[^\s@]+\.[A-Za-z]{2,}")
_NON_DIGIT = re.compile(r"\D")


def assert_no_personal_data(details: Mapping[str, Any], path: str = "details") -> None:
    """Refuse audit details that look like raw personal data (IIN, phone, card, e-mail).

    The log is append-only and never shredded, so a leaked identifier could never be removed from
    it. Callers put ids and pseudonyms in details; this is the safety net, and it names the key only.
    """
    for key, value in details.items():
        _check_value(value, f"{path}.{key}")


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, str):
        # Fast exit for the common case: short strings without '@' can hold neither an e-mail nor a
        # 10+ digit run (this function runs for every audit entry).
        if len(value) >= 10 or "@" in value:
            _check_text(value, where)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if 10**10 <= value < 10**19:
            _check_text(str(value), where)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_value(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_value(item, f"{where}.{i}")


def _check_text(value: str, where: str) -> None:
    if "@" in value and _EMAIL.search(value):
        raise InvalidInput("audit details must not contain an e-mail address", field=where)
    for m in _DIGIT_RUN.finditer(value):
        digits = _NON_DIGIT.sub("", m.group())
        if len(digits) == 12 and is_valid_iin(digits):
            raise InvalidInput("audit details must not contain an IIN", field=where)
        if len(digits) == 11 and digits[0] in "78" and digits[1] == "7":
            raise InvalidInput("audit details must not contain a phone number", field=where)
        if 13 <= len(digits) <= 19 and is_valid_card(digits):
            raise InvalidInput("audit details must not contain a card number", field=where)


# One encoder instance: json.dumps() with non-default options builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode()


def details_digest(details: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(details)).hexdigest()


def leaf_bytes(entry_id: int, created_at: datetime | str, actor: str, organization_id: int | None, action: str,
               object_type: str, object_id: str, digest: str) -> bytes:
    """The exact bytes hashed into the tree. Public so that anyone can check a proof independently."""
    ts = created_at if isinstance(created_at, str) else created_at.isoformat(timespec="microseconds")
    if (type(entry_id) is int and (organization_id is None or type(organization_id) is int) and type(ts) is str
            and type(actor) is str and type(action) is str and type(object_type) is str
            and type(object_id) is str and type(digest) is str):
        # canonical_json of the dict below, written out (keys sorted, strings escaped by the encoder's
        # own function): the same bytes, 3x faster. Other types take the general path.
        org = "null" if organization_id is None else organization_id
        return (f'{{"action":{_json_string(action)},"actor":{_json_string(actor)},"digest":{_json_string(digest)},'
                f'"id":{entry_id},"object":{_json_string(object_id)},"org":{org},"ts":{_json_string(ts)},'
                f'"type":{_json_string(object_type)},"v":1}}').encode()
    return canonical_json({
        "v": 1, "id": entry_id, "ts": ts, "actor": actor,
        "org": organization_id, "action": action, "type": object_type, "object": object_id, "digest": digest,
    })


def entry_leaf_bytes(entry: AuditEntry) -> bytes:
    return leaf_bytes(entry.id, entry.created_at, entry.actor, entry.organization_id, entry.action,
                      entry.object_type, entry.object_id, entry.details_digest)


# --- appending ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, as a module reports it."""

    actor: str
    action: str
    object_type: str
    object_id: str
    organization_id: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


_NODE_TABLE = AuditNode.__table__
_STATE_TABLE = AuditState.__table__


def _validated_row(index: int, now: str, ev: Event) -> tuple[tuple[Any, ...], bytes]:
    for name, value, limit in (("actor", ev.actor, 64), ("action", ev.action, 64),
                               ("object_type", ev.object_type, 64), ("object_id", ev.object_id, 128)):
        if not value or len(value) > limit:
            raise InvalidInput(f"audit {name} must be 1–{limit} characters", field=name)
    assert_no_personal_data(ev.details)
    _check_value(ev.object_id, "object_id")
    details = _CANONICAL.encode(dict(ev.details))
    digest = hashlib.sha256(details.encode()).hexdigest()
    row = (index, ev.actor, ev.organization_id, ev.action, ev.object_type, ev.object_id, details, digest)
    leaf = merkle.leaf_hash(leaf_bytes(index, now, ev.actor, ev.organization_id, ev.action, ev.object_type,
                                       ev.object_id, digest))
    return row, leaf


_COPY_MIN_ROWS = 64  # PostgreSQL batches at least this big go in with COPY


def _insert_sql(session: Session) -> tuple[str, str, str]:
    """Driver-level INSERTs for the hot path: SQLAlchemy's per-row parameter processing costs more
    than the database itself here, and these three statements never change."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    p = "?" if sqlite else "%s"
    details = p if sqlite else f"CAST({p} AS json)"
    return (
        f"INSERT INTO audit_entries (id, created_at, actor, organization_id, action, object_type, object_id, "
        f"details, details_digest) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {details}, {p})",
        f"INSERT INTO audit_nodes (id, hash) VALUES ({p}, {p})",
        f"UPDATE audit_state SET tree_size = {p} WHERE id = 1",
    )


def _db_timestamp(session: Session, now: datetime) -> Any:
    # SQLite stores what SQLAlchemy's DateTime would store (naive UTC text); PostgreSQL takes the object.
    if session.get_bind().dialect.name == "sqlite":
        return now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return now


def record_many(session: Session, events: Sequence[Event]) -> list[int]:
    """Append events in the caller's transaction; returns their entry ids (= leaf indexes)."""
    if not events:
        return []
    # The state row lock serializes appenders (SQLite: BEGIN IMMEDIATE already did). Driver-level, like the
    # inserts below: the ORM's statement machinery and tenant hook cost more than the read itself, and every
    # audited change pays this once.
    # Flush the caller's pending ORM changes first (the ORM read this replaced did it by autoflush): they lock
    # their rows before the audit state row, the order every writer follows — the other order deadlocks on
    # PostgreSQL against a writer that updated a row and then appends (e.g. a scan job's cancel vs its worker).
    session.flush()
    conn = session.connection()
    lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    start = conn.exec_driver_sql(f"SELECT tree_size FROM {_STATE_TABLE.name} WHERE id = 1{lock}").scalar_one()
    now = utcnow()
    stamp, now_iso = _db_timestamp(session, now), now.isoformat(timespec="microseconds")
    rows, leaves = [], []
    for offset, ev in enumerate(events):
        row, leaf = _validated_row(start + offset, now_iso, ev)
        rows.append((row[0], stamp) + row[1:])
        leaves.append(leaf)
    # The left siblings outside the batch (at most one per level) in one query, not one query each.
    siblings = _get_nodes(session, merkle.append_nodes_needed(start, len(leaves)))
    nodes = merkle.append_batch(start, leaves, lambda level, index: siblings[(level, index)])
    insert_entries, insert_nodes, update_state = _insert_sql(session)
    node_rows = [(node_key(lv, ix), h) for lv, ix, h in nodes]
    if conn.dialect.name == "postgresql" and len(rows) >= _COPY_MIN_ROWS:
        # COPY streams the rows; executemany sends one Bind/Execute per row (2.2x slower for 1,000),
        # but COPY's extra round trips cost more than that for a handful of rows.
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy("COPY audit_entries (id, created_at, actor, organization_id, action, object_type, "
                             "object_id, details, details_digest) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            with cursor.copy("COPY audit_nodes (id, hash) FROM STDIN") as copy:
                for node in node_rows:
                    copy.write_row(node)
    else:
        conn.exec_driver_sql(insert_entries, rows)
        conn.exec_driver_sql(insert_nodes, node_rows)
    conn.exec_driver_sql(update_state, (start + len(events),))
    return list(range(start, start + len(events)))


def random_object_id(prefix: str) -> str:
    """An id for an object that has no row of its own (a redaction run, an export): ``prefix_`` + 24
    random lowercase letters. Letters only, so it can never look like an IIN, phone or card to the PII
    guard (random hex has long enough digit runs about once in several hundred ids)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    return f"{prefix}_" + "".join(secrets.choice(alphabet) for _ in range(24))


def record(session: Session, *, actor: str, action: str, object_type: str, object_id: str,
           organization_id: int | None = None, details: Mapping[str, Any] | None = None) -> int:
    """Append one audit entry inside the caller's transaction; returns its id."""
    return record_many(session, [Event(actor, action, object_type, object_id, organization_id, details or {})])[0]


def _get_nodes(session: Session, refs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Fetch perfect-subtree hashes in one driver-level query (the proof hot path)."""
    wanted = {node_key(lv, ix): (lv, ix) for lv, ix in refs}
    if not wanted:
        return {}
    conn = session.connection()
    p = "?" if conn.dialect.name == "sqlite" else "%s"
    # Straight to the driver inside the session's transaction: SQLAlchemy's statement machinery
    # costs more than the indexed lookup itself.
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT id, hash FROM audit_nodes WHERE id IN ({', '.join([p] * len(wanted))})",
                       tuple(wanted))
        nodes = {wanted[k]: bytes(h) for k, h in cursor.fetchall()}
    finally:
        cursor.close()
    if len(nodes) != len(wanted):
        raise _MissingNodes(sorted(set(wanted.values()) - set(nodes)))
    return nodes


class _MissingNodes(NotFound):
    def __init__(self, missing: list[tuple[int, int]]) -> None:
        super().__init__(f"audit nodes missing: {missing[:3]}")


def tree_size(session: Session) -> int:
    return session.execute(select(_STATE_TABLE.c.tree_size).where(_STATE_TABLE.c.id == 1)).scalar_one()


def root_hash(session: Session, size: int) -> bytes:
    return merkle.root_from_nodes(size, _get_nodes(session, merkle.root_nodes_needed(size)))


def initialize(session: Session) -> None:
    """Create the state row (idempotent); called by migrations/`qorgau init`."""
    if session.get(AuditState, 1) is None:
        session.add(AuditState(id=1, tree_size=0))
        session.flush()


# --- signed tree heads --------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes
    signed_at: datetime
    key_id: str
    signature: bytes

    def message(self) -> bytes:
        return sth_message(self.tree_size, self.root_hash, self.signed_at)

    def to_dict(self) -> dict[str, Any]:
        return {"tree_size": self.tree_size, "root_hash": self.root_hash.hex(),
                "signed_at": self.signed_at.isoformat(timespec="microseconds"),
                "key_id": self.key_id, "signature": self.signature.hex()}


def sth_message(size: int, root: bytes, signed_at: datetime) -> bytes:
    return STH_CONTEXT + f"{size}\n{root.hex()}\n{signed_at.isoformat(timespec='microseconds')}\n".encode()


def _signing_key(session: Session, keyring: Any) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(keyring.get_or_create(session, SIGNING_KEY_ID, "audit-signing"))


def public_key(session: Session, keyring: Any) -> bytes:
    """The raw Ed25519 public key that signs tree heads (publish it; pin it in verifiers)."""
    return _signing_key(session, keyring).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _as_head(row: AuditTreeHead) -> TreeHead:
    return TreeHead(row.tree_size, bytes(row.root_hash), row.signed_at, row.key_id, bytes(row.signature))


def latest_tree_head(session: Session) -> TreeHead | None:
    row = session.scalars(select(AuditTreeHead).order_by(AuditTreeHead.tree_size.desc()).limit(1)).first()
    return _as_head(row) if row else None


def tree_head_at(session: Session, size: int) -> TreeHead | None:
    row = session.get(AuditTreeHead, size)
    return _as_head(row) if row else None


def sign_tree_head(session: Session, keyring: Any) -> TreeHead:
    """Sign the current tree (no-op if the newest signed head already covers it)."""
    size = tree_size(session)
    latest = latest_tree_head(session)
    if latest is not None and latest.tree_size == size:
        return latest
    root = root_hash(session, size) if size else merkle.EMPTY_ROOT
    signed_at = utcnow()
    sig = _signing_key(session, keyring).sign(sth_message(size, root, signed_at))
    session.add(AuditTreeHead(tree_size=size, root_hash=root, signed_at=signed_at, key_id=SIGNING_KEY_ID,
                              signature=sig))
    session.flush()
    return TreeHead(size, root, signed_at, SIGNING_KEY_ID, sig)


def signed_head_covering(db: Database, keyring: Any, entry_id: int | None = None) -> TreeHead:
    """The newest signed head, signing a fresh one if it doesn't cover ``entry_id`` yet."""
    with db.reader() as session:
        head = latest_tree_head(session)
    if head is not None and (entry_id is None or entry_id < head.tree_size):
        return head
    with db.transaction() as session:
        return sign_tree_head(session, keyring)


def verify_head_signature(head: TreeHead, public: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(head.signature, head.message())
        return True
    except InvalidSignature:
        return False


# --- reading and proofs -------------------------------------------------------------------------


# The columns leaf_bytes hashes, in its argument order; built once (building a statement costs about
# as much as running it on SQLite).
_LEAF_COLUMNS = (AuditEntry.id, AuditEntry.created_at, AuditEntry.actor, AuditEntry.organization_id,
                 AuditEntry.action, AuditEntry.object_type, AuditEntry.object_id, AuditEntry.details_digest)


def get_entry(session: Session, entry_id: int) -> AuditEntry:
    """An entry of the session's tenant (platform entries only in an unscoped session)."""
    entry = session.scalar(select(AuditEntry).where(AuditEntry.id == entry_id))
    if entry is None:
        raise NotFound("audit entry not found", field="entry_id")
    return entry


def list_entries(session: Session, *, limit: int = 50, before: int | None = None,
                 action: str | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class InclusionProof:
    entry_id: int
    tree_size: int
    leaf_hash: bytes
    path: list[bytes]
    root_hash: bytes

    def verify(self) -> bool:
        return merkle.verify_inclusion(self.leaf_hash, self.entry_id, self.tree_size, self.path, self.root_hash)

    def to_dict(self) -> dict[str, Any]:
        return {"entry_id": self.entry_id, "tree_size": self.tree_size, "leaf_hash": self.leaf_hash.hex(),
                "path": [p.hex() for p in self.path], "root_hash": self.root_hash.hex()}


def inclusion_proof(session: Session, entry_id: int, size: int) -> InclusionProof:
    """Prove that the entry, *as it is stored now*, is in the tree of ``size`` leaves.

    The entry is loaded through the (tenant-scoped) session, so another organization's entry is
    "not found"; see :func:`prove_entry` when the caller already holds the entry.
    """
    leaf = _stored_leaf_bytes(session, entry_id)
    if leaf is None:
        raise NotFound("audit entry not found", field="entry_id")
    return _prove(session, entry_id, leaf, size)


def _stored_leaf_bytes(session: Session, entry_id: int) -> bytes | None:
    """``leaf_bytes`` of a stored entry in one driver-level query (the proof hot path: an ORM query
    costs twice the whole proof). The tenant rule is applied here by hand (see ``db.tenant_of``);
    tests/core/test_audit.py proves another organization's entry stays "not found"."""
    conn = session.connection()
    p = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = ("SELECT id, created_at, actor, organization_id, action, object_type, object_id, details_digest "
           f"FROM audit_entries WHERE id = {p}")
    params: tuple[Any, ...] = (entry_id,)
    tenant = tenant_of(session)
    if tenant is not None:
        sql += f" AND organization_id = {p}"
        params += (tenant,)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    stamp = row[1]
    if isinstance(stamp, str):  # SQLite: naive UTC text, as _db_timestamp writes it
        ts = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc).isoformat(timespec="microseconds")
    else:
        ts = stamp.astimezone(timezone.utc).isoformat(timespec="microseconds")
    return leaf_bytes(row[0], ts, *row[2:])


def prove_entry(session: Session, entry: AuditEntry, size: int) -> InclusionProof:
    """The audit path of an entry in the tree of ``size`` leaves, in one query.

    The leaf is recomputed from the entry's stored fields, so an altered entry yields a proof that
    fails to verify rather than a proof of what used to be there.
    """
    return _prove(session, entry.id, entry_leaf_bytes(entry), size)


def _prove(session: Session, entry_id: int, leaf: bytes, size: int) -> InclusionProof:
    if not 0 <= entry_id < size:
        raise InvalidInput("tree_size must be greater than the entry id", field="tree_size")
    refs = merkle.inclusion_proof_nodes(entry_id, size)
    try:
        nodes = _get_nodes(session, refs + merkle.root_nodes_needed(size))
    except _MissingNodes:
        raise InvalidInput("tree_size is larger than the log", field="tree_size") from None
    return InclusionProof(entry_id, size, merkle.leaf_hash(leaf),
                          merkle.inclusion_proof(entry_id, size, nodes), merkle.root_from_nodes(size, nodes))


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    path: list[bytes]

    def verify(self) -> bool:
        return merkle.verify_consistency(self.first, self.second, self.first_root, self.second_root, self.path)

    def to_dict(self) -> dict[str, Any]:
        return {"first": self.first, "second": self.second, "first_root": self.first_root.hex(),
                "second_root": self.second_root.hex(), "path": [p.hex() for p in self.path]}


def consistency_proof(session: Session, first: int, second: int) -> ConsistencyProof:
    if not 0 < first <= second:
        raise InvalidInput("need 0 < first <= second", field="first")
    refs = (set(merkle.consistency_proof_nodes(first, second)) | set(merkle.root_nodes_needed(first))
            | set(merkle.root_nodes_needed(second)))
    try:
        nodes = _get_nodes(session, refs)
    except _MissingNodes:
        raise InvalidInput("second is larger than the log", field="second") from None
    return ConsistencyProof(first, second, merkle.root_from_nodes(first, nodes),
                            merkle.root_from_nodes(second, nodes), merkle.consistency_proof(first, second, nodes))


# --- full verification --------------------------------------------------------------------------


@dataclass
class VerifyReport:
    entries: int = 0
    tree_size: int = 0
    heads_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, message: str) -> None:
        if len(self.problems) < 100:
            self.problems.append(message)


class _Levels(Mapping[tuple[int, int], bytes]):
    """Perfect-subtree hashes rebuilt in memory, looked up like the stored nodes."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.levels = [leaves]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def __getitem__(self, ref: tuple[int, int]) -> bytes:
        level, index = ref
        return self.levels[level][index]

    def __iter__(self):  # type: ignore[no-untyped-def]
        for level, hashes in enumerate(self.levels):
            for index in range(len(hashes)):
                yield (level, index)

    def __len__(self) -> int:
        return sum(len(h) for h in self.levels)


def verify(db: Database, keyring: Any, batch: int = 20_000) -> VerifyReport:
    """Rebuild the tree from the entries and check nodes, state and every signed tree head."""
    report = VerifyReport()
    leaves: list[bytes] = []
    with db.reader() as session:
        report.tree_size = tree_size(session)
        last = -1
        while True:
            # Rows of the hashed columns plus details, not ORM objects (no identity map, no instrumentation).
            rows = session.execute(select(*_LEAF_COLUMNS, AuditEntry.details).where(AuditEntry.id > last)
                                   .order_by(AuditEntry.id).limit(batch)).all()
            for row in rows:
                entry_id = row[0]
                expected = len(leaves)
                if entry_id != expected:
                    report.problem(f"entries {expected}..{entry_id - 1} are missing")
                    while len(leaves) < entry_id:
                        leaves.append(b"\x00" * 32)
                if details_digest(row[8]) != row[7]:
                    report.problem(f"entry {entry_id}: details do not match their digest")
                leaves.append(merkle.leaf_hash(leaf_bytes(*row[:8])))
                last = entry_id
            if len(rows) < batch:
                break
        report.entries = len(leaves)
        if report.entries != report.tree_size:
            report.problem(f"the log records {report.tree_size} entries but {report.entries} are stored")
        rebuilt = _Levels(leaves)
        stored_count = 0
        last_key = -1
        while True:
            chunk = session.execute(select(_NODE_TABLE.c.id, _NODE_TABLE.c.hash).where(_NODE_TABLE.c.id > last_key)
                                    .order_by(_NODE_TABLE.c.id).limit(batch * 2)).all()
            for key, h in chunk:
                level, index = key & 63, key >> 6
                stored_count += 1
                try:
                    ours = rebuilt[(level, index)]
                except IndexError:
                    report.problem(f"node ({level}, {index}) has no entries under it")
                    continue
                if ours != bytes(h):
                    what = f"entry {index}" if level == 0 else f"entries {index << level}..{((index + 1) << level) - 1}"
                    report.problem(f"{what}: stored hash differs from the entries (altered entry or node)")
            if len(chunk) < batch * 2:
                break
            last_key = chunk[-1][0]
        if stored_count != len(rebuilt) and report.entries == report.tree_size:
            report.problem(f"{len(rebuilt)} tree nodes expected, {stored_count} stored")
        pub = public_key(session, keyring)
        for row in session.scalars(select(AuditTreeHead).order_by(AuditTreeHead.tree_size)):
            head = _as_head(row)
            report.heads_checked += 1
            if not verify_head_signature(head, pub):
                report.problem(f"signed tree head {head.tree_size}: bad signature")
            if head.tree_size > len(leaves):
                report.problem(f"signed tree head {head.tree_size} covers entries that are gone "
                               f"(only {len(leaves)} stored)")
                continue
            ours = merkle.root_from_nodes(head.tree_size, rebuilt) if head.tree_size else merkle.EMPTY_ROOT
            if ours != head.root_hash:
                report.problem(f"signed tree head {head.tree_size}: root differs from the entries")
    return report


def count_entries(session: Session) -> int:
    return session.scalar(select(func.count(AuditEntry.id))) or 0
