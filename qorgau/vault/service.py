"""The identity vault: identifiers live here, encrypted per subject; everything else carries a pseudonym.

L-PD-SPLIT (split personal data into the data itself and the information that identifies a person) made
real: a *subject* is one person; their identifiers (IIN, names, phones, e-mails, documents, addresses…)
are sealed with a data key of their own; datasets carry only a *pseudonym* per (organization, domain,
subject); a *blind index* finds "the subject with this IIN" without decrypting anything.

Every method takes a tenant-scoped session (``platform.db.transaction(org_id)``); the organization is
:func:`qorgau.core.db.tenant_of` of it. Nothing here commits: the caller's transaction holds the change
and its audit entry together. Nothing here logs, raises or audits a value: errors name the field and
the entity type, audit details hold counts, types, domains and pseudonyms.

* :meth:`Vault.tokenize` / :meth:`Vault.tokenize_many` — identifier(s) → pseudonym, creating the
  subject if new; idempotent (the same lookup value always maps to the same subject). The bulk path is
  the same in two halves: :func:`check_records` (validation, key-free: ``split`` runs it in a worker
  process) and :meth:`Vault.tokenize_checked` (keys, blind indexes, sealing, rows).
* :meth:`Vault.detokenize` / :meth:`Vault.detokenize_many` — re-identification: only for the roles in
  :data:`REIDENTIFY_ROLES`, for a stated purpose code, after every re-identification check (the consent
  hook, :attr:`Vault.reidentification_checks`), audited per call.
* :meth:`Vault.shred` — crypto-shredding: the subject's key is destroyed, lookups deleted, the pseudonym
  kept so detokenize answers "erased on <date>", and a signed erasure certificate is issued.

A per-process cache makes warm :meth:`Vault.tokenize` a dictionary lookup: blind index → token. A shred
in this process removes the subject from it at once (and a tombstone keeps it out); a shred in another
process is seen after at most ``cache_ttl`` seconds (default :data:`DEFAULT_CACHE_TTL`), when the entry is
re-checked against the database. See ``docs/vault.md``.
"""

from __future__ import annotations

import hmac
import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import phonenumbers
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Integer as Integer_
from sqlalchemy import delete, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core import audit, auth
from ..core.audit import AuditEntry
from ..core.auth import Principal, Role
from ..core.db import tenant_of, utcnow
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, QorgauError
from ..core.keys import NONCE_BYTES, verify_master_keys
from ..discovery.redact import normalized_value
from ..discovery.types import EntityType
from ..identifiers import (
    IdentifierError,
    is_valid_bin,
    is_valid_card,
    is_valid_iin,
    normalize_email,
    parse_bin,
    parse_card,
    parse_iban,
    parse_id_card,
    parse_iin,
    parse_passport,
    parse_phone,
)
from . import certificates, crypto
from .certificates import CertificateVerification, ErasureCertificate
from .models import ACTIVE, ERASED, ErasureCertificateRecord, VaultLookup, VaultPseudonym, VaultSubject
from ..core.platform import shared

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = [
    "DEFAULT_CACHE_TTL", "LOOKUP_TYPES", "REIDENTIFY_ROLES", "CertificateSummary", "CheckedRecord", "ErasureCertificate",
    "Identity", "ReidentificationCheck", "ReidentificationEvent", "ReidentificationRefused",
    "ReidentificationRequest", "RowProblem", "SubjectErased", "SubjectRecord", "Token", "UnknownPseudonym",
    "Vault", "VaultStats", "check_identifier", "check_records", "register_reidentification_check", "vault_for",
]

# Identifiers that find a subject again (blind-indexed). Everything else is an *attribute*: sealed with
# the subject, never indexed.
LOOKUP_TYPES: frozenset[str] = frozenset({"KZ_IIN", "PHONE_NUMBER", "EMAIL_ADDRESS", "KZ_PASSPORT", "KZ_ID_CARD"})
# When a record's lookup values point at different subjects, the strongest identifier decides.
LOOKUP_PRIORITY: tuple[str, ...] = ("KZ_IIN", "KZ_PASSPORT", "KZ_ID_CARD", "EMAIL_ADDRESS", "PHONE_NUMBER")
# A person has one IIN for life (passport and ID-card numbers change on reissue; phones and e-mails are
# shared in families): a record with an unknown IIN never joins a subject that already has another IIN.
ONE_PER_PERSON: frozenset[str] = frozenset({"KZ_IIN"})
# Re-identification is a DPO's and an administrator's act (L-PD-GOV: the responsible person). The role
# model has no finer "reidentify" capability; API keys get it by holding one of these roles.
REIDENTIFY_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.DPO)

KNOWN_TYPES: tuple[str, ...] = tuple(t.value for t in EntityType)
TYPE_BITS: dict[str, int] = {t: 1 << i for i, t in enumerate(KNOWN_TYPES)}
OTHER_TYPE_BIT = 1 << len(KNOWN_TYPES)  # custom entity types (discovery's YAML recognizers)
DEFAULT_DOMAIN = "default"
DEFAULT_CACHE_TTL = 1.0  # seconds: the bound on seeing another process's shred (docs/vault.md)
CACHE_MAX_ENTRIES = 200_000
MAX_VALUE_CHARS = 1000
MAX_VALUES_PER_TYPE = 50
MAX_REASON_CHARS = 200
BLIND_KEY_PURPOSE = "vault-blind-index"
PSEUDONYM_KEY_PURPOSE = "vault-pseudonym"
SUBJECT_KEY_PURPOSE = "vault-subject"
REIDENTIFY_ACTIONS = ("vault.detokenize", "vault.detokenize_many")

_DOMAIN = re.compile(r"[a-z0-9_-]{1,40}")
_PURPOSE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_CUSTOM_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
_PSEUDONYM = re.compile(r"ps_[a-z]{26}")
_SPACES = re.compile(r"\s+")
_CHUNK = 500
_RETRIES = 4

# The validators of qorgau.identifiers, per entity type (checksums, formats, existing birth dates).
_PARSERS: dict[str, Callable[[str], object]] = {
    "KZ_IIN": parse_iin, "KZ_BIN": parse_bin, "PHONE_NUMBER": parse_phone, "EMAIL_ADDRESS": normalize_email,
    "IBAN_CODE": parse_iban, "CREDIT_CARD": parse_card, "KZ_PASSPORT": parse_passport, "KZ_ID_CARD": parse_id_card,
}
_FAST_VALID: dict[str, Callable[[str], bool]] = {"KZ_IIN": is_valid_iin, "KZ_BIN": is_valid_bin,
                                                  "CREDIT_CARD": is_valid_card}
_PLAIN_PHONE = re.compile(r"\+?[0-9]{10,15}")  # digits only: passes every pre-check of parse_phone


def _phone_e164(value: str) -> str:
    """``parse_phone(value).e164`` without the number's kind and country, which the vault does not keep
    (they are a third of parse_phone's cost). Only for plain digit strings, which pass all of
    parse_phone's text checks; the same libphonenumber calls decide (parse, possible length, assigned
    range). Anything else, and every refusal, goes through parse_phone itself for its exact reason.
    tests/vault/test_service.py holds the two equal."""
    if _PLAIN_PHONE.fullmatch(value):
        try:
            number = phonenumbers.parse(value, "KZ")
        except phonenumbers.NumberParseException:
            number = None
        if (number is not None and phonenumbers.is_possible_number_with_reason(number) == _IS_POSSIBLE
                and phonenumbers.is_valid_number(number)):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return parse_phone(value).e164


_IS_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE
_CANONICAL: dict[str, Callable[[str], str]] = {
    "PHONE_NUMBER": _phone_e164, "EMAIL_ADDRESS": normalize_email,
    "KZ_PASSPORT": lambda v: parse_passport(v).value,
}
_VALIDATE_NORMALIZED = frozenset({"KZ_IIN", "KZ_BIN", "CREDIT_CARD", "KZ_ID_CARD"})  # digits, separators dropped


# --- the contract's shapes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """What tokenizing gives back; no personal data inside.

    ``created`` is True on the one call (or, in a batch, the one record) that created the subject.
    """

    pseudonym: str
    subject_id: int
    created: bool


@dataclass(frozen=True)
class SubjectRecord:
    """One person's identifiers from one row: entity type → value or values. ``repr``/``str`` show types only."""

    identifiers: Mapping[str, str | Sequence[str]]

    def __repr__(self) -> str:
        return f"SubjectRecord(types={sorted(str(t) for t in self.identifiers)})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why a record was kept out of the vault: its position in the batch, the entity type, the reason.
    Never the value."""

    index: int
    field: str
    reason: str


def _masked(values: Mapping[str, Sequence[str]]) -> str:
    return "{" + ", ".join(f"{t}: <{len(v)} value{'s' if len(v) != 1 else ''}>" for t, v in values.items()) + "}"


@dataclass(frozen=True)
class Identity:
    """A re-identified subject. ``repr``/``str`` mask every value; read ``identifiers`` explicitly.

    ``invalid`` lists the values that were stored although they failed validation (``keep_invalid``).
    """

    pseudonym: str
    subject_id: int
    identifiers: dict[str, list[str]]
    invalid: dict[str, list[str]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Identity(pseudonym={self.pseudonym!r}, subject_id={self.subject_id}, "
                f"identifiers={_masked(self.identifiers)})")

    __str__ = __repr__


class SubjectErased(QorgauError):
    """The subject was crypto-shredded: their identifiers no longer exist anywhere. ``erased_at`` says when."""

    code = "subject_erased"
    status = 410

    def __init__(self, erased_at: datetime, *, field: str | None = "pseudonym") -> None:
        super().__init__(f"the subject was erased on {erased_at:%Y-%m-%d} (crypto-shredded); "
                         "their identifiers can no longer be recovered", field=field)
        self.erased_at = erased_at


class UnknownPseudonym(NotFound):
    code = "unknown_pseudonym"

    def __init__(self, message: str = "no subject has this pseudonym in this domain", *,
                 field: str | None = "pseudonym") -> None:
        super().__init__(message, field=field)


class ReidentificationRefused(PermissionDenied):
    """A re-identification check (the consent hook) refused; ``reason`` is the check's own words."""

    code = "reidentification_refused"

    def __init__(self, reason: str, *, field: str | None = "purpose") -> None:
        super().__init__(f"re-identification refused: {reason}", field=field)
        self.reason = reason


@dataclass(frozen=True)
class ReidentificationRequest:
    """What a re-identification check sees: who asks, why, and which subjects (ids and pseudonyms only)."""

    organization_id: int
    principal: Principal
    purpose: str
    domain: str
    subject_ids: tuple[int, ...]
    pseudonyms: tuple[str, ...]


class ReidentificationCheck(Protocol):
    """The consent hook. Runs before anything is decrypted, in the caller's transaction.

    Return ``None`` (or an empty mapping) to allow; return ``{subject_id: reason}`` to refuse those
    subjects (single detokenize raises :class:`ReidentificationRefused`; detokenize_many puts a
    ``ReidentificationRefused`` in their place); raise :class:`PermissionDenied` to refuse the request.
    """

    def __call__(self, session: Session, request: ReidentificationRequest) -> Mapping[int, str] | None: ...


_GLOBAL_CHECKS: list[ReidentificationCheck] = []


def register_reidentification_check(check: ReidentificationCheck) -> None:
    """Run ``check`` before every re-identification by every :class:`Vault` in this process (the consent
    module registers itself here); :attr:`Vault.reidentification_checks` adds checks to one vault."""
    if check not in _GLOBAL_CHECKS:
        _GLOBAL_CHECKS.append(check)


def unregister_reidentification_check(check: ReidentificationCheck) -> None:
    if check in _GLOBAL_CHECKS:
        _GLOBAL_CHECKS.remove(check)


@dataclass(frozen=True)
class ReidentificationEvent:
    """One re-identification as the audit log recorded it: who, when, why, how many — never values."""

    entry_id: int
    at: datetime
    actor: str
    purpose: str
    domain: str
    count: int
    batch: bool


@dataclass(frozen=True)
class CertificateSummary:
    certificate_id: str
    pseudonym: str
    domain: str
    erased_at: datetime
    key_id: str
    audit_entry_id: int
    actor: str
    reason: str


@dataclass(frozen=True)
class VaultStats:
    """Counts only. ``by_type``: active subjects holding at least one value of each entity type."""

    subjects: int
    active: int
    erased: int
    with_invalid: int
    by_type: dict[str, int]
    lookups: int
    pseudonyms: int
    certificates: int
    reidentifications: dict[str, int]  # purpose → subjects re-identified, over ``days``
    days: int

    def to_dict(self) -> dict[str, Any]:
        return {"subjects": self.subjects, "active": self.active, "erased": self.erased,
                "with_invalid": self.with_invalid, "by_type": self.by_type, "lookups": self.lookups,
                "pseudonyms": self.pseudonyms, "certificates": self.certificates,
                "reidentifications": self.reidentifications, "days": self.days}


# --- validation -----------------------------------------------------------------------------------


def check_identifier(entity_type: str, value: str) -> tuple[str, str | None]:
    """``(normalized value, None)`` when ``value`` is a valid ``entity_type``, else ``(normalized, reason)``.

    Normalization is discovery's (:func:`qorgau.discovery.redact.normalized_value`: one normalizer for
    the whole platform); validation is :mod:`qorgau.identifiers`'. The reason never repeats the value.
    """
    if entity_type in _FAST_VALID and value.isascii() and value.isdigit():
        # Hot path for clean digit strings: what normalized_value returns for them (the value itself),
        # and the exception-free checksum validator. tests/vault/test_service.py holds them equal.
        if _FAST_VALID[entity_type](value):
            return value, None
    canonical = _CANONICAL.get(entity_type)
    if canonical is not None:
        # The validator's own result is what normalized_value returns for a valid value (it calls the
        # same function), so the value is parsed once, not twice (a phone parse is the costly one).
        try:
            return canonical(value.strip()), None
        except IdentifierError as exc:
            return normalized_value(entity_type, value), exc.reason
    normalized = normalized_value(entity_type, value)
    parser = _PARSERS.get(entity_type)
    if parser is None:
        return normalized, None
    try:
        parser(normalized if entity_type in _VALIDATE_NORMALIZED else value.strip())
    except IdentifierError as exc:
        return normalized, exc.reason
    return normalized, None


def _stored_form(entity_type: str, value: str, normalized: str, valid: bool) -> str:
    """What is sealed: the canonical form of a valid identifier (E.164 phone, digits-only IIN), else the
    value as written with runs of whitespace collapsed (names and addresses keep their case)."""
    if valid and entity_type in _PARSERS:
        return normalized
    return _SPACES.sub(" ", value).strip()


def _check_domain(domain: str) -> str:
    if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
        raise InvalidInput("domain must be 1–40 characters of a-z, 0-9, '_' and '-'", field="domain")
    return domain


def normalize_purpose(purpose: str) -> str:
    """A purpose *code* (``customer-request``, ``court-order``): lowercase, spaces become '-'. It goes into
    the audit log, which is never erased, so free text (that could name a person) is refused."""
    if not isinstance(purpose, str):
        raise InvalidInput("purpose is required", field="purpose")
    code = _SPACES.sub("-", purpose.strip().lower())
    if not code:
        raise InvalidInput("purpose is required: say why the subject is re-identified", field="purpose")
    if not _PURPOSE.fullmatch(code):
        raise InvalidInput("purpose must be a purpose code of 1–64 characters (a-z, 0-9, '-', '_', '.'), "
                           "such as 'customer-request'; it is written to the audit log, so no free text",
                           field="purpose")
    return code


def _check_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a reason is required for an erasure", field="reason")
    reason = _SPACES.sub(" ", reason).strip()
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"reason must be at most {MAX_REASON_CHARS} characters", field="reason")
    try:
        audit.assert_no_personal_data({"reason": reason})
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace("audit details", "the reason"), field="reason") from None
    return reason


def _type_bit(entity_type: str) -> int:
    return TYPE_BITS.get(entity_type, OTHER_TYPE_BIT)


@dataclass(frozen=True, slots=True)
class CheckedRecord:
    """One record validated and normalized by :func:`check_records`: per value (entity type, stored form,
    normalized form, reason or None). Holds values in the clear, in memory only; ``repr`` shows types."""

    index: int
    values: tuple[tuple[str, str, str, str | None], ...]

    def __repr__(self) -> str:
        return f"CheckedRecord(index={self.index}, types={sorted({v[0] for v in self.values})})"

    __str__ = __repr__


def check_records(records: Sequence[SubjectRecord], *, keep_invalid: bool = False) -> list[CheckedRecord | RowProblem]:
    """Validate and normalize a batch of records — everything :meth:`Vault.tokenize_many` does before it
    needs a key or the database. Pure and key-free, so ``split`` runs it in a worker process.

    One result per record, in order: a :class:`CheckedRecord`, or the :class:`RowProblem` that keeps the
    record out (the first failing value in the record's order, as ``tokenize_many`` reports it).
    """
    return [_check_record(index, record, keep_invalid) for index, record in enumerate(records)]


def _check_record(index: int, record: SubjectRecord, keep_invalid: bool) -> CheckedRecord | RowProblem:
    identifiers = getattr(record, "identifiers", None)
    if not isinstance(identifiers, Mapping):
        return RowProblem(index, "identifiers", "a record must map entity types to values")
    values: list[tuple[str, str, str, str | None]] = []
    has_lookup = False
    per_type_normals: dict[str, set[str]] = {}
    for entity_type, given in identifiers.items():
        if not isinstance(entity_type, str) or not (entity_type in TYPE_BITS or _CUSTOM_TYPE.fullmatch(entity_type)):
            return RowProblem(index, str(entity_type)[:40], "unknown entity type")
        items = [given] if isinstance(given, str) or given is None else given
        if not isinstance(items, Sequence) or len(items) > MAX_VALUES_PER_TYPE:
            return RowProblem(index, entity_type, f"give a value or a list of at most {MAX_VALUES_PER_TYPE}")
        for value in items:
            if value is None:
                continue
            if not isinstance(value, str):
                return RowProblem(index, entity_type, "value must be text")
            if not value.strip():
                continue
            if len(value) > MAX_VALUE_CHARS:
                return RowProblem(index, entity_type, f"value is longer than {MAX_VALUE_CHARS} characters")
            normalized, reason = check_identifier(entity_type, value)
            if reason is not None and not keep_invalid:
                return RowProblem(index, entity_type, f"not a valid {entity_type}: {reason}")
            seen = per_type_normals.setdefault(entity_type, set())
            if normalized in seen:
                continue
            seen.add(normalized)
            values.append((entity_type, _stored_form(entity_type, value, normalized, reason is None), normalized,
                           reason))
            has_lookup = has_lookup or entity_type in LOOKUP_TYPES
    for entity_type in ONE_PER_PERSON:
        if len(per_type_normals.get(entity_type, ())) > 1:
            return RowProblem(index, entity_type, f"more than one {entity_type} in one record")
    if not values:
        return RowProblem(index, "identifiers", "no identifiers")
    if not has_lookup:
        return RowProblem(index, "identifiers", "no lookup identifier (" + ", ".join(LOOKUP_PRIORITY)
                          + "): the record could not be matched to its subject again")
    return CheckedRecord(index, tuple(values))


# --- the per-process token cache ------------------------------------------------------------------


class _TokenCache:
    """(organization, domain, blind index) → (pseudonym, subject id, checked at), for one database.

    Entries are added only after the transaction that found or created them commits. A shred in this
    process drops the subject's entries at once and leaves a tombstone, so a token of a shredded subject
    is never handed out again by this process; entries older than the vault's TTL are re-checked against
    the database, which bounds how long another process's shred can go unseen.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str, bytes], tuple[str, int, float]] = {}
        self._erased: set[int] = set()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, str, bytes], ttl: float) -> tuple[str, int] | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[2] > ttl or entry[1] in self._erased:
            return None
        return entry[0], entry[1]

    def put(self, key: tuple[int, str, bytes], pseudonym: str, subject_id: int) -> None:
        with self._lock:
            if subject_id in self._erased:
                return
            if len(self._entries) >= CACHE_MAX_ENTRIES:
                for old in list(itertools.islice(self._entries, CACHE_MAX_ENTRIES // 10)):
                    self._entries.pop(old, None)
            self._entries[key] = (pseudonym, subject_id, time.monotonic())

    def forget_subject(self, subject_id: int) -> None:
        with self._lock:
            self._erased.add(subject_id)
            for key in [k for k, v in self._entries.items() if v[1] == subject_id]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_CACHES: dict[str, _TokenCache] = {}
_ORG_KEYS: dict[tuple[str, int], tuple[bytes, bytes]] = {}
_GROWTH: dict[str, tuple[int, int]] = {}  # namespace → (subjects created by this process, next ANALYZE at)
_REGISTRY_LOCK = threading.Lock()
_PENDING = "qorgau_vault_pending_tokens"
_PENDING_KEYS = "qorgau_vault_pending_keys"


def _cache_for(namespace: str) -> _TokenCache:
    with _REGISTRY_LOCK:
        cache = _CACHES.get(namespace)
        if cache is None:
            cache = _CACHES[namespace] = _TokenCache()
        return cache


@event.listens_for(Session, "after_commit")
def _publish_tokens(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: nothing is committed yet
    keys = session.info.pop(_PENDING_KEYS, None)
    if keys:
        _ORG_KEYS.update(keys)
    pending = session.info.pop(_PENDING, None)
    if pending:
        for cache, key, pseudonym, subject_id in pending:
            cache.put(key, pseudonym, subject_id)


@event.listens_for(Session, "after_rollback")
def _drop_tokens(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_PENDING_KEYS, None)


# --- batch preparation ----------------------------------------------------------------------------


@dataclass
class _Prepared:
    index: int
    lookups: list[tuple[str, bytes, bool]]  # (entity type, blind index, valid)
    values: list[tuple[str, str, str, bool, bytes | None]]  # (type, stored form, normalized, valid, blind index)
    invalid: list[tuple[str, str, str]]  # (entity type, stored form, reason)


@dataclass
class _SubjectState:
    """A subject being written in this batch: its identifiers in the clear, in memory only."""

    subject_id: int  # negative: not inserted yet
    public_id: str
    key_id: str
    key: bytes | None
    ids: dict[str, list[str]]
    normals: dict[str, set[str]]
    invalid: list[list[str]]
    type_mask: int
    changed: bool = False

    def add(self, entity_type: str, stored: str, normalized: str) -> bool:
        seen = self.normals.setdefault(entity_type, set())
        if normalized in seen:
            return False
        seen.add(normalized)
        self.ids.setdefault(entity_type, []).append(stored)
        self.type_mask |= _type_bit(entity_type)
        self.changed = True
        return True

    def payload(self) -> bytes:
        return _PAYLOAD_JSON({"v": 1, "ids": self.ids, "invalid": self.invalid}).encode()


# json.dumps with these options builds a new encoder per call; one reused encoder, the same bytes.
_PAYLOAD_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def _load_payload(raw: bytes) -> tuple[dict[str, list[str]], list[list[str]]]:
    doc = json.loads(raw)
    return {t: list(v) for t, v in doc["ids"].items()}, [list(i) for i in doc.get("invalid", [])]


class _Sql:
    """Driver-level SQL inside the session's transaction, for the batch path. ``{p}`` is the driver's
    placeholder, ``{ids}`` a list of them. Every statement names its ``organization_id`` by hand."""

    def __init__(self, session: Session) -> None:
        conn = session.connection()
        self.sqlite = conn.dialect.name == "sqlite"
        self.p = "?" if self.sqlite else "%s"
        self.raw = conn.connection.driver_connection

    def select_in(self, sql: str, params: tuple[Any, ...], values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """``{only}`` before a column in a filter tells SQLite not to pick an index for it: without
        statistics its planner otherwise chooses the (organization, …) indexes and scans the whole
        organization instead of the ``IN`` list's primary or unique keys (measured: 350–590 ms per chunk
        on a vault of 120,000 subjects). PostgreSQL's planner has statistics; there it is empty."""
        rows: list[tuple[Any, ...]] = []
        cursor = self.raw.cursor()
        only = "+" if self.sqlite else ""
        try:
            for start in range(0, len(values), _CHUNK):
                chunk = list(values[start:start + _CHUNK])
                cursor.execute(sql.format(p=self.p, only=only, ids=", ".join([self.p] * len(chunk))),
                               (*params, *chunk))
                rows.extend(cursor.fetchall())
        finally:
            cursor.close()
        return rows

    def executemany(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cursor = self.raw.cursor()
        try:
            cursor.executemany(sql.format(p=self.p), rows)
        finally:
            cursor.close()

    def new_subject_ids(self, count: int) -> list[int]:
        """Ids for new subject rows. SQLite: the writer holds the database lock (BEGIN IMMEDIATE), so the
        next ids are free; a reader session racing anyway fails on the primary key and the batch is
        retried. PostgreSQL: the column's own sequence."""
        cursor = self.raw.cursor()
        try:
            if self.sqlite:
                cursor.execute("SELECT coalesce(max(id), 0) FROM vault_subjects")
                first = cursor.fetchone()[0] + 1
                return list(range(first, first + count))
            cursor.execute("SELECT nextval(pg_get_serial_sequence('vault_subjects', 'id')) "
                           "FROM generate_series(1, %s)", (count,))
            return sorted(row[0] for row in cursor.fetchall())
        finally:
            cursor.close()

    def timestamp(self, moment: datetime) -> Any:
        # What SQLAlchemy's DateTime stores on SQLite (naive UTC text); PostgreSQL takes the object.
        if self.sqlite:
            return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return moment

    def boolean(self, value: bool) -> Any:
        return int(value) if self.sqlite else value


# --- the vault ------------------------------------------------------------------------------------


class Vault:
    """The identity vault of one platform (one database). Thread-safe; share one per process
    (:func:`vault_for`)."""

    def __init__(self, platform: Platform, *, cache_ttl: float = DEFAULT_CACHE_TTL,
                 check_master_key: bool = True) -> None:
        self.platform = platform
        self.cache_ttl = cache_ttl
        # The consent hook point: callables run before decrypting (see ReidentificationCheck).
        self.reidentification_checks: list[ReidentificationCheck] = []
        self._namespace = platform.db.url
        self._cache = _cache_for(self._namespace)
        if check_master_key:
            # A wrong master key file is a start-up error with a clear message, not a failed request later.
            with platform.db.reader() as session:
                verify_master_keys(session, platform.keys)

    def __repr__(self) -> str:
        return f"Vault(db={self.platform.db.dialect}, cache={len(self._cache)} tokens, ttl={self.cache_ttl}s)"

    # -- keys ----------------------------------------------------------------------------------

    def _org(self, session: Session) -> int:
        org = tenant_of(session)
        if org is None:
            raise PermissionDenied("the vault needs a session scoped to one organization", field="organization_id")
        return org

    def _org_key(self, session: Session, key_id: str, purpose: str, create: bool) -> bytes | None:
        keyring = self.platform.keyring
        try:
            return keyring.data_key(session, key_id)
        except NotFound:
            if not create:
                return None
        try:
            with session.begin_nested():
                keyring.create_data_key(session, purpose, key_id=key_id)
        except IntegrityError:
            pass  # created by a concurrent transaction (PostgreSQL waited for it to commit)
        return keyring.data_key(session, key_id)

    def _keys(self, session: Session, org: int, *, create: bool) -> tuple[bytes, bytes] | None:
        """The organization's (blind-index key, pseudonym key), unwrapped once per process.

        Remembered for the process only once they are committed: keys created by a transaction that
        rolls back never existed, and blind indexes made with them would find nothing later.
        """
        slot = (self._namespace, org)
        keys = _ORG_KEYS.get(slot) or session.info.get(_PENDING_KEYS, {}).get(slot)
        if keys is not None:
            return keys
        blind = self._org_key(session, f"dk-vault-bi-{org}", BLIND_KEY_PURPOSE, create)
        pseudo = self._org_key(session, f"dk-vault-ps-{org}", PSEUDONYM_KEY_PURPOSE, create)
        if blind is None or pseudo is None:
            return None
        keys = (blind, pseudo)
        session.info.setdefault(_PENDING_KEYS, {})[slot] = keys
        return keys

    # -- small driver-level helpers (the tenant rule is applied by hand: see db.tenant_of) --------

    def _cursor_sql(self, session: Session) -> tuple[Any, str]:
        conn = session.connection()
        return conn.connection.driver_connection.cursor(), ("?" if conn.dialect.name == "sqlite" else "%s")

    def _lookup_subject(self, session: Session, org: int, entity_type: str, blind: bytes) -> int | None:
        cursor, p = self._cursor_sql(session)
        try:
            cursor.execute(f"SELECT subject_id FROM vault_lookups WHERE organization_id = {p} "
                           f"AND entity_type = {p} AND blind_index = {p}", (org, entity_type, blind))
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else row[0]

    def _lookup_token(self, session: Session, org: int, entity_type: str, blind: bytes,
                      domain: str) -> tuple[int, str | None] | None:
        """(subject id, pseudonym in ``domain`` or None) for a blind index, in one indexed query."""
        cursor, p = self._cursor_sql(session)
        try:
            cursor.execute(f"SELECT l.subject_id, ps.pseudonym FROM vault_lookups l LEFT JOIN vault_pseudonyms ps "
                           f"ON ps.subject_id = l.subject_id AND ps.domain = {p} AND ps.organization_id = {p} "
                           f"WHERE l.organization_id = {p} AND l.entity_type = {p} AND l.blind_index = {p}",
                           (domain, org, org, entity_type, blind))
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else (row[0], row[1])

    def _defer_cache(self, session: Session, org: int, domain: str, blind: bytes, pseudonym: str,
                     subject_id: int) -> None:
        session.info.setdefault(_PENDING, []).append((self._cache, (org, domain, blind), pseudonym, subject_id))

    def _insert_ignore(self, session: Session, table: Any) -> Any:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    # -- tokenize ------------------------------------------------------------------------------

    def tokenize(self, session: Session, entity_type: str, value: str, *, domain: str = DEFAULT_DOMAIN,
                 actor: str) -> Token:
        """Identifier → pseudonym in ``domain``, creating the subject if the vault doesn't know it.

        Only :data:`LOOKUP_TYPES` can be tokenized alone (an attribute such as a name could never find
        its subject again); an invalid identifier is refused with the validator's reason.
        """
        org = self._org(session)
        _check_domain(domain)
        if entity_type not in LOOKUP_TYPES:
            raise InvalidInput(f"only lookup types can be tokenized alone: {', '.join(sorted(LOOKUP_TYPES))}; "
                               "attributes (names, addresses…) go with a record (tokenize_many)",
                               field="entity_type")
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput("value is required", field="value")
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidInput(f"value is longer than {MAX_VALUE_CHARS} characters", field="value")
        normalized, reason = check_identifier(entity_type, value)
        if reason is not None:
            raise InvalidInput(f"not a valid {entity_type}: {reason}", field="value")
        keys = self._keys(session, org, create=True)
        assert keys is not None
        blind = crypto.blind_index(keys[0], entity_type, normalized)
        hit = self._cache.get((org, domain, blind), self.cache_ttl)
        if hit is not None:
            return Token(hit[0], hit[1], False)
        found = self._lookup_token(session, org, entity_type, blind, domain)
        if found is not None:
            subject_id, pseudonym = found
            if pseudonym is None:
                pseudonym = self._pseudonym(session, org, subject_id, domain, keys, actor)
            self._defer_cache(session, org, domain, blind, pseudonym, subject_id)
            return Token(pseudonym, subject_id, False)
        prepared = _Prepared(0, [(entity_type, blind, True)],
                             [(entity_type, _stored_form(entity_type, value, normalized, True), normalized, True, blind)],
                             [])
        tokens, summary = self._write_batch(session, org, keys, [prepared], domain)
        token = tokens[0]
        if summary["changed"]:  # not when a concurrent writer created the subject first
            audit.record(session, actor=actor, action="vault.tokenize", object_type="vault_subject",
                         object_id=token.pseudonym, organization_id=org,
                         details={"entity_type": entity_type, "domain": domain, "created": token.created})
        return token

    def tokenize_many(self, session: Session, records: Sequence[SubjectRecord], *, domain: str = DEFAULT_DOMAIN,
                      actor: str, keep_invalid: bool = False) -> list[Token | RowProblem]:
        """The batch path (split): one result per record, in order, and one audit entry (counts only).

        A record is kept out (a :class:`RowProblem` with the entity type and the reason) when an
        identifier fails validation — unless ``keep_invalid``, which stores it marked invalid with the
        reason — when it has no lookup identifier (it could never be matched again, so a re-run would
        duplicate it), or more than one IIN. Idempotent: the same lookup value always maps to the same
        subject, so re-running a batch after a crash creates no duplicates; new attributes of a known
        subject are merged into it. Safe against concurrent writers (retries on a unique-key race).
        """
        org = self._org(session)  # refuse an unscoped session before validating anything
        _check_domain(domain)
        return self.tokenize_checked(session, check_records(records, keep_invalid=keep_invalid), domain=domain,
                                     actor=actor)

    def tokenize_checked(self, session: Session, checked: Sequence[CheckedRecord | RowProblem], *,
                         domain: str = DEFAULT_DOMAIN, actor: str, cache: bool = True) -> list[Token | RowProblem]:
        """:meth:`tokenize_many` for records already validated by :func:`check_records` — the bulk path of
        ``split``, which validates the next batch in a worker process while this one is written.

        ``checked[i]`` must be what :func:`check_records` returned for record ``i`` (a :class:`RowProblem`
        passes through). The validation is the costly, key-free half; blind indexes, keys, sealing and
        the rows are made here, under the organization's keys, in the caller's transaction. With
        ``cache=False`` the tokens are not put in the per-process token cache (a bulk load of a million
        new subjects would only evict the entries warm ``tokenize`` calls use).
        """
        org = self._org(session)
        _check_domain(domain)
        keys = self._keys(session, org, create=True)
        assert keys is not None
        results: list[Token | RowProblem | None] = [None] * len(checked)
        prepared: list[_Prepared] = []
        blind_key = keys[0]
        digest = hmac.digest
        for position, item in enumerate(checked):
            if isinstance(item, RowProblem):
                results[position] = item
                continue
            if not isinstance(item, CheckedRecord):
                raise InvalidInput("tokenize_checked takes what check_records returned", field="records")
            lookups: list[tuple[str, bytes, bool]] = []
            values: list[tuple[str, str, str, bool, bytes | None]] = []
            invalid: list[tuple[str, str, str]] = []
            for entity_type, stored, normalized, reason in item.values:
                blind = None
                if entity_type in LOOKUP_TYPES:  # crypto.blind_index, inlined: it runs per value of a million rows
                    blind = digest(blind_key, f"{entity_type}:{normalized}".encode(), "sha256")
                    lookups.append((entity_type, blind, reason is None))
                values.append((entity_type, stored, normalized, reason is None, blind))
                if reason is not None:
                    invalid.append((entity_type, stored, reason))
            prepared.append(_Prepared(position, lookups, values, invalid))
        tokens, summary = (self._write_batch(session, org, keys, prepared, domain, cache=cache)
                           if prepared else ([], {}))
        for item, token in zip(prepared, tokens):
            results[item.index] = token
        problems = sum(1 for r in results if isinstance(r, RowProblem))
        if summary.get("changed"):
            audit.record(session, actor=actor, action="vault.tokenize_many", object_type="vault_batch",
                         object_id="tb_" + crypto.random_letters(), organization_id=org,
                         details={"domain": domain, "records": len(checked), "problems": problems,
                                  "subjects_created": summary["created"], "subjects_updated": summary["updated"],
                                  "lookups_added": summary["lookups"], "invalid_kept": summary["invalid"]})
        return results  # type: ignore[return-value]

    def _write_batch(self, session: Session, org: int, keys: tuple[bytes, bytes], prepared: list[_Prepared],
                     domain: str, *, cache: bool = True) -> tuple[list[Token], dict[str, int]]:
        for attempt in range(_RETRIES):
            try:
                with session.begin_nested():
                    tokens, summary, cache_items = self._resolve_and_write(session, org, keys, prepared, domain,
                                                                           cache)
            except (IntegrityError, session.get_bind().dialect.loaded_dbapi.IntegrityError):
                # Another transaction inserted one of our new lookup values first (PostgreSQL: we waited
                # for it to commit). Run again: this time the value is found and mapped to its subject.
                if attempt == _RETRIES - 1:
                    raise Conflict("the vault kept changing under this batch; try again") from None
                continue
            if cache:
                for blind, token in cache_items:
                    self._defer_cache(session, org, domain, blind, token.pseudonym, token.subject_id)
            if summary["created"]:
                self._refresh_statistics(session, summary["created"])
            return tokens, summary
        raise AssertionError("unreachable")

    def _refresh_statistics(self, session: Session, created: int) -> None:
        """PostgreSQL: ANALYZE the vault's tables when this process has grown them past the next
        milestone (2,000 new subjects, then ×4). A vault filled by a bulk split is queried long before
        autovacuum's next analyze; with the empty-table statistics of its creation the planner scans an
        organization's rows instead of using the unique keys (measured: 5 ms instead of 0.1 ms per
        lookup on 20,000 subjects). SQLite's plans are pinned in the SQL instead (see _Sql.select_in)."""
        if session.get_bind().dialect.name != "postgresql":
            return
        with _REGISTRY_LOCK:
            done, milestone = _GROWTH.get(self._namespace, (0, 2_000))
            done += created
            due = done >= milestone
            _GROWTH[self._namespace] = (done, milestone * 4 if due else milestone)
        if due:
            session.execute(text("ANALYZE vault_subjects, vault_lookups, vault_pseudonyms, data_keys"))

    def _resolve_and_write(self, session: Session, org: int, keys: tuple[bytes, bytes], prepared: list[_Prepared],
                           domain: str, cache: bool = True) -> tuple[list[Token], dict[str, int], list[tuple[bytes, Token]]]:
        """The batch itself. Driver-level SQL (the ORM's per-row work costs more than the database here);
        every statement carries ``organization_id = org`` by hand (see db.tenant_of), and
        tests/vault/test_isolation.py proves another organization's rows are never matched."""
        sql = _Sql(session)
        # 1. Which lookup values does the vault know already?
        known: dict[tuple[str, bytes], int] = {}
        by_type: dict[str, set[bytes]] = {}
        for item in prepared:
            for entity_type, blind, _ in item.lookups:
                by_type.setdefault(entity_type, set()).add(blind)
        for entity_type, blinds in by_type.items():  # entity_type given: the unique index answers
            for subject_id, blind in sql.select_in(
                    "SELECT subject_id, blind_index FROM vault_lookups WHERE organization_id = {p} "
                    "AND entity_type = {p} AND blind_index IN ({ids})", (org, entity_type), sorted(blinds)):
                known[(entity_type, bytes(blind))] = subject_id
        stored_known = set(known)
        masks: dict[int, int] = {}
        public_ids: dict[int, str] = {}
        key_ids: dict[int, str] = {}
        for sid, public_id, key_id, mask in sql.select_in(
                "SELECT id, public_id, key_id, type_mask FROM vault_subjects WHERE {only}organization_id = {p} "
                f"AND {{only}}status = '{ACTIVE}' AND id IN ({{ids}})", (org,), sorted(set(known.values()))):
            masks[sid], public_ids[sid], key_ids[sid] = mask, public_id, key_id

        # 2. Resolve each record to a subject (existing, or new with a negative id) and what it adds.
        next_new = itertools.count(-1, -1)
        targets: list[int] = []
        additions: list[list[tuple[str, str, str, bool]]] = []
        new_lookups: list[tuple[str, bytes, bool, int]] = []
        first_of_new: set[int] = set()
        type_bits_get = TYPE_BITS.get
        for item in prepared:
            target = None
            if known and any((t, blind) in known for t, blind, _ in item.lookups):
                found = sorted((LOOKUP_PRIORITY.index(t), sid) for t, blind, _ in item.lookups
                               if (sid := known.get((t, blind))) is not None and sid in masks)
                target = found[0][1] if found else None
            if target is not None:
                for strong in ONE_PER_PERSON:
                    mine = [(t, b) for t, b, _ in item.lookups if t == strong]
                    if mine and known.get(mine[0]) != target and masks[target] & TYPE_BITS[strong]:
                        target = None  # another person who shares a phone or an e-mail with this subject
                        break
            if target is None:
                target = next(next_new)
                masks[target] = 0
                first_of_new.add(item.index)
            adds = []
            for entity_type, stored, normalized, valid, blind in item.values:
                if blind is not None:
                    owner = known.get((entity_type, blind))
                    if owner is None:
                        known[(entity_type, blind)] = target
                        new_lookups.append((entity_type, blind, valid, target))
                    elif owner == target and (entity_type, blind) in stored_known:
                        continue  # a stored lookup row means the value is sealed with this subject already
                adds.append((entity_type, stored, normalized, valid))
                masks[target] |= type_bits_get(entity_type, OTHER_TYPE_BIT)
            targets.append(target)
            additions.append(adds)

        # 3. Open the existing subjects that get something new (one key query for all of them).
        subjects: dict[int, _SubjectState] = {}
        touched = sorted({t for t, adds in zip(targets, additions) if t > 0 and adds})
        if touched:
            opened = self.platform.keyring.data_keys(session, [key_ids[sid] for sid in touched])
            sealed_rows = dict(sql.select_in("SELECT id, sealed FROM vault_subjects WHERE {only}organization_id = {p} "
                                             "AND id IN ({ids})", (org,), touched))
            for sid in touched:
                key = opened[key_ids[sid]]
                raw = crypto.unseal(key_ids[sid], key, bytes(sealed_rows[sid]), crypto.subject_aad(org, public_ids[sid]))
                ids, invalid = _load_payload(raw)
                normals = {t: {normalized_value(t, v) for v in vs} for t, vs in ids.items()}
                subjects[sid] = _SubjectState(sid, public_ids[sid], key_ids[sid], key, ids, normals, invalid,
                                              _mask_of(ids))

        # 4. New subjects: a key each (one statement for all keys), then their rows.
        new_temp = sorted({t for t in targets if t < 0}, reverse=True)
        if new_temp:
            # Key ids and public ids from one urandom call each (crypto.random_letters_many). Sorted: the
            # rows then go into each random-keyed B-tree in key order (fewer pages touched per batch).
            key_names = sorted("dk-vs-" + letters for letters in crypto.random_letters_many(len(new_temp)))
            new_keys = self.platform.keyring.create_data_keys(session, SUBJECT_KEY_PURPOSE, key_names)
            for temp, key_id, key, public_id in zip(new_temp, key_names, new_keys,
                                                    crypto.random_letters_many(len(new_temp))):
                subjects[temp] = _SubjectState(temp, public_id, key_id, key, {}, {}, [], 0)

        invalid_count = 0
        for target, adds, item in zip(targets, additions, prepared):
            if not adds:
                continue
            state = subjects[target]
            for entity_type, stored, normalized, valid in adds:
                if state.add(entity_type, stored, normalized) and not valid:
                    reason = next(r for t, s, r in item.invalid if t == entity_type and s == stored)
                    state.invalid.append([entity_type, stored, reason])
                    invalid_count += 1

        now = utcnow()
        stamp = sql.timestamp(now)
        real_id: dict[int, int] = {}
        if new_temp:
            for temp, new_id in zip(new_temp, sql.new_subject_ids(len(new_temp))):
                real_id[temp] = new_id
                public_ids[new_id] = subjects[temp].public_id
            rows = []
            nonces = os.urandom(NONCE_BYTES * len(new_temp))
            for n, temp in enumerate(new_temp):
                state = subjects[temp]
                assert state.key is not None
                rows.append((real_id[temp], org, state.public_id, state.key_id,
                             crypto.seal(state.key_id, state.key, state.payload(), crypto.subject_aad(org, state.public_id),
                                         nonce=nonces[n * NONCE_BYTES:(n + 1) * NONCE_BYTES]),
                             state.type_mask, sql.boolean(bool(state.invalid)), ACTIVE, stamp, stamp))
            rows.sort(key=lambda row: row[2])  # public id order (its unique index); ids stay as allocated
            sql.executemany("INSERT INTO vault_subjects (id, organization_id, public_id, key_id, sealed, type_mask, "
                            "has_invalid, status, created_at, updated_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, "
                            "{p}, {p}, {p})", rows)
        updated = [subjects[sid] for sid in touched if subjects[sid].changed]
        if updated:
            sql.executemany(
                "UPDATE vault_subjects SET sealed = {p}, type_mask = {p}, has_invalid = {p}, updated_at = {p} "
                "WHERE id = {p} AND organization_id = {p}",
                [(crypto.seal(s.key_id, s.key, s.payload(), crypto.subject_aad(org, s.public_id)), s.type_mask,
                  sql.boolean(bool(s.invalid)), stamp, s.subject_id, org) for s in updated if s.key is not None])
        if new_lookups:
            sql.executemany("INSERT INTO vault_lookups (organization_id, entity_type, blind_index, subject_id, valid) "
                            "VALUES ({p}, {p}, {p}, {p}, {p})",
                            sorted((org, t, blind, real_id.get(target, target), sql.boolean(valid))
                                   for t, blind, valid, target in new_lookups))  # unique index order

        # 5. Pseudonyms in this domain (existing rows read, missing ones derived and inserted).
        final = [real_id.get(t, t) for t in targets]
        pseudonyms: dict[int, str] = {}
        created_ids = set(real_id.values())
        existing = sorted({sid for sid in final if sid not in created_ids})
        for sid, pseudonym in sql.select_in(
                "SELECT subject_id, pseudonym FROM vault_pseudonyms WHERE {only}organization_id = {p} "
                "AND {only}domain = {p} AND subject_id IN ({ids})", (org, domain), existing):
            pseudonyms[sid] = pseudonym
        missing = sorted({sid for sid in final if sid not in pseudonyms})
        if missing:
            for sid in missing:
                pseudonyms[sid] = crypto.pseudonym(keys[1], domain, public_ids[sid])
            sql.executemany("INSERT INTO vault_pseudonyms (organization_id, domain, pseudonym, subject_id, created_at) "
                            "VALUES ({p}, {p}, {p}, {p}, {p})",
                            sorted((org, domain, pseudonyms[sid], sid, stamp) for sid in missing))

        tokens: list[Token] = []
        cache_items: list[tuple[bytes, Token]] = []
        for item, sid in zip(prepared, final):
            token = Token(pseudonyms[sid], sid, item.index in first_of_new)
            tokens.append(token)
            if not cache:
                continue
            for t, blind, _ in item.lookups:
                owner = known[(t, blind)]
                if real_id.get(owner, owner) == sid:
                    cache_items.append((blind, token))
        summary = {"created": len(new_temp), "updated": len(updated), "lookups": len(new_lookups),
                   "invalid": invalid_count, "pseudonyms": len(missing),
                   "changed": int(bool(new_temp or updated or new_lookups or missing))}
        return tokens, summary, cache_items

    def _pseudonym(self, session: Session, org: int, subject_id: int, domain: str, keys: tuple[bytes, bytes],
                   actor: str) -> str:
        """The subject's pseudonym in ``domain``, derived and stored (audited) the first time it's asked for."""
        row = session.execute(select(VaultPseudonym.pseudonym).where(
            VaultPseudonym.subject_id == subject_id, VaultPseudonym.domain == domain)).first()
        if row is not None:
            return row[0]
        subject = session.execute(select(VaultSubject.public_id, VaultSubject.status, VaultSubject.erased_at)
                                  .where(VaultSubject.id == subject_id)).first()
        if subject is None:
            raise NotFound("subject not found", field="subject_id")
        if subject.status == ERASED:
            raise SubjectErased(subject.erased_at, field="subject_id")
        pseudonym = crypto.pseudonym(keys[1], domain, subject.public_id)
        result = session.execute(self._insert_ignore(session, VaultPseudonym.__table__).values(
            organization_id=org, domain=domain, pseudonym=pseudonym, subject_id=subject_id, created_at=utcnow()))
        if result.rowcount:
            audit.record(session, actor=actor, action="vault.pseudonym", object_type="vault_subject",
                         object_id=pseudonym, organization_id=org, details={"domain": domain})
        return pseudonym

    def pseudonym_for(self, session: Session, subject_id: int, domain: str = DEFAULT_DOMAIN, *,
                      actor: str = auth.SYSTEM_ACTOR) -> str:
        """The subject's pseudonym in ``domain`` (stable; created on first use). An erased subject keeps the
        pseudonyms it had but gets no new ones (:class:`SubjectErased`)."""
        org = self._org(session)
        _check_domain(domain)
        keys = self._keys(session, org, create=True)
        assert keys is not None
        return self._pseudonym(session, org, subject_id, domain, keys, actor)

    # -- lookup --------------------------------------------------------------------------------

    def lookup(self, session: Session, entity_type: str, value: str) -> int | None:
        """The subject id holding this identifier, through the blind index (nothing is decrypted).

        Works on a read session. Values stored with ``keep_invalid`` are found too (same normalization).
        """
        org = self._org(session)
        if entity_type not in LOOKUP_TYPES:
            raise InvalidInput(f"only lookup types are indexed: {', '.join(sorted(LOOKUP_TYPES))}",
                               field="entity_type")
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput("value is required", field="value")
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidInput(f"value is longer than {MAX_VALUE_CHARS} characters", field="value")
        keys = self._keys(session, org, create=False)
        if keys is None:
            return None  # the organization never stored anything
        blind = crypto.blind_index(keys[0], entity_type, normalized_value(entity_type, value))
        return self._lookup_subject(session, org, entity_type, blind)

    # -- re-identification ---------------------------------------------------------------------

    def _authorize(self, session: Session, principal: Principal, purpose: str) -> tuple[int, str]:
        org = self._org(session)
        if not isinstance(principal, Principal) or principal.organization_id != org:
            raise PermissionDenied("the caller does not belong to this organization", field="principal")
        principal.require(*REIDENTIFY_ROLES)
        return org, normalize_purpose(purpose)

    def _run_checks(self, session: Session, request: ReidentificationRequest) -> dict[int, str]:
        refused: dict[int, str] = {}
        for check in [*_GLOBAL_CHECKS, *self.reidentification_checks]:
            verdict = check(session, request)
            if verdict:
                for subject_id, reason in verdict.items():
                    refused.setdefault(int(subject_id), str(reason)[:200])
        return refused

    def _resolve(self, session: Session, pseudonyms: Sequence[str], domain: str) -> dict[str, Any]:
        rows: dict[str, Any] = {}
        wanted = list(dict.fromkeys(p for p in pseudonyms if isinstance(p, str) and _PSEUDONYM.fullmatch(p)))
        for start in range(0, len(wanted), _CHUNK):
            for row in session.execute(
                    select(VaultPseudonym.pseudonym, VaultSubject.id, VaultSubject.public_id, VaultSubject.key_id,
                           VaultSubject.sealed, VaultSubject.status, VaultSubject.erased_at)
                    .join(VaultSubject, VaultSubject.id == VaultPseudonym.subject_id)
                    .where(VaultPseudonym.domain == domain, VaultPseudonym.pseudonym.in_(wanted[start:start + _CHUNK]))
            ).all():
                rows[row.pseudonym] = row
        return rows

    def _open(self, org: int, row: Any, key: bytes) -> Identity:
        ids, invalid = _load_payload(crypto.unseal(row.key_id, key, bytes(row.sealed),
                                                   crypto.subject_aad(org, row.public_id)))
        bad: dict[str, list[str]] = {}
        for entity_type, value, _reason in invalid:
            bad.setdefault(entity_type, []).append(value)
        return Identity(row.pseudonym, row.id, ids, bad)

    def detokenize(self, session: Session, pseudonym: str, *, domain: str = DEFAULT_DOMAIN, purpose: str,
                   principal: Principal, actor: str | None = None) -> Identity:
        """Re-identify one subject: only for :data:`REIDENTIFY_ROLES`, for a purpose code, after every
        re-identification check; audited (purpose, domain, pseudonym — never values).

        Raises :class:`UnknownPseudonym`, :class:`SubjectErased` ("erased on <date>"),
        :class:`ReidentificationRefused` or :class:`PermissionDenied`.
        """
        org, purpose = self._authorize(session, principal, purpose)
        _check_domain(domain)
        if not isinstance(pseudonym, str) or not _PSEUDONYM.fullmatch(pseudonym):
            raise InvalidInput("pseudonym must be 'ps_' followed by 26 letters a-z", field="pseudonym")
        row = self._resolve(session, [pseudonym], domain).get(pseudonym)
        if row is None:
            raise UnknownPseudonym()
        if row.status == ERASED or row.sealed is None:
            raise SubjectErased(row.erased_at)
        request = ReidentificationRequest(org, principal, purpose, domain, (row.id,), (pseudonym,))
        refused = self._run_checks(session, request)
        if row.id in refused:
            raise ReidentificationRefused(refused[row.id])
        key = self.platform.keyring.data_keys(session, [row.key_id]).get(row.key_id)
        if key is None:
            raise SubjectErased(row.erased_at or utcnow())
        identity = self._open(org, row, key)
        audit.record(session, actor=actor or principal.actor, action="vault.detokenize", object_type="vault_subject",
                     object_id=pseudonym, organization_id=org,
                     details={"purpose": purpose, "domain": domain, "count": 1})
        return identity

    def detokenize_many(self, session: Session, pseudonyms: Sequence[str], *, domain: str = DEFAULT_DOMAIN,
                        purpose: str, principal: Principal,
                        actor: str | None = None) -> dict[str, Identity | SubjectErased | None]:
        """Re-identify many (join-back): pseudonym → :class:`Identity`, :class:`SubjectErased`, ``None``
        (unknown pseudonym) or, for subjects a re-identification check refused, a
        :class:`ReidentificationRefused`. One audit entry per call, with the counts."""
        org, purpose = self._authorize(session, principal, purpose)
        _check_domain(domain)
        if isinstance(pseudonyms, str):
            raise InvalidInput("give a list of pseudonyms", field="pseudonyms")
        rows = self._resolve(session, pseudonyms, domain)
        out: dict[str, Any] = {}
        live = []
        for pseudonym in dict.fromkeys(pseudonyms):
            row = rows.get(pseudonym)
            if row is None:
                out[pseudonym] = None
            elif row.status == ERASED or row.sealed is None:
                out[pseudonym] = SubjectErased(row.erased_at)
            else:
                live.append(row)
        refused: dict[int, str] = {}
        if live:
            request = ReidentificationRequest(org, principal, purpose, domain, tuple(r.id for r in live),
                                              tuple(r.pseudonym for r in live))
            refused = self._run_checks(session, request)
        allowed = [r for r in live if r.id not in refused]
        keys = self.platform.keyring.data_keys(session, [r.key_id for r in allowed])
        opened = 0
        for row in live:
            if row.id in refused:
                out[row.pseudonym] = ReidentificationRefused(refused[row.id], field="pseudonyms")
            elif row.key_id not in keys:
                out[row.pseudonym] = SubjectErased(row.erased_at or utcnow())
            else:
                out[row.pseudonym] = self._open(org, row, keys[row.key_id])
                opened += 1
        values = list(out.values())
        audit.record(session, actor=actor or principal.actor, action="vault.detokenize_many", object_type="vault_batch",
                     object_id="db_" + crypto.random_letters(), organization_id=org,
                     details={"purpose": purpose, "domain": domain, "count": opened, "requested": len(out),
                              "unknown": sum(1 for v in values if v is None),
                              "erased": sum(1 for v in values if isinstance(v, SubjectErased)),
                              "refused": sum(1 for v in values if isinstance(v, ReidentificationRefused))})
        return out

    # -- crypto-shredding ----------------------------------------------------------------------

    def shred(self, session: Session, pseudonym: str, *, domain: str = DEFAULT_DOMAIN, reason: str,
              actor: str) -> ErasureCertificate:
        """Crypto-shred the subject behind ``pseudonym`` and return the signed erasure certificate.

        Destroys the subject's data key (every copy of their sealed identifiers, in backups too, becomes
        unreadable), deletes their lookup rows (the blind index no longer finds them), keeps their
        pseudonyms (so detokenize answers "erased on <date>" instead of "unknown"), records the erasure
        in the audit log, signs a tree head covering it, and issues a certificate with the entry's
        inclusion proof. L-PD-RETENTION (destroy when the purpose is achieved or consent is missing),
        L-PD-RIGHTS (destruction on the subject's demand).
        """
        org = self._org(session)
        _check_domain(domain)
        if not isinstance(pseudonym, str) or not _PSEUDONYM.fullmatch(pseudonym):
            raise InvalidInput("pseudonym must be 'ps_' followed by 26 letters a-z", field="pseudonym")
        reason = _check_reason(reason)
        row = session.execute(select(VaultPseudonym.subject_id).where(
            VaultPseudonym.domain == domain, VaultPseudonym.pseudonym == pseudonym)).first()
        if row is None:
            raise UnknownPseudonym()
        return self._shred(session, org, row[0], pseudonym, domain, reason, actor)

    def shred_subject(self, session: Session, subject_id: int, *, reason: str, actor: str,
                      domain: str = DEFAULT_DOMAIN) -> ErasureCertificate:
        """:meth:`shred` by subject id (what :meth:`lookup` returns): for erasure on a subject's demand or
        when consent is withdrawn. The certificate names the subject's pseudonym in ``domain``."""
        org = self._org(session)
        _check_domain(domain)
        reason = _check_reason(reason)
        keys = self._keys(session, org, create=True)
        assert keys is not None
        existing = session.execute(select(VaultPseudonym.pseudonym).where(
            VaultPseudonym.subject_id == subject_id, VaultPseudonym.domain == domain)).first()
        pseudonym = existing[0] if existing else self._pseudonym(session, org, subject_id, domain, keys, actor)
        return self._shred(session, org, subject_id, pseudonym, domain, reason, actor)

    def _shred(self, session: Session, org: int, subject_id: int, pseudonym: str, domain: str, reason: str,
               actor: str) -> ErasureCertificate:
        subject = session.execute(select(VaultSubject).where(VaultSubject.id == subject_id)
                                  .with_for_update()).scalar_one_or_none()
        if subject is None:
            raise UnknownPseudonym()
        if subject.status == ERASED:
            assert subject.erased_at is not None
            raise SubjectErased(subject.erased_at)
        keyring = self.platform.keyring
        now = utcnow()
        # This process forgets the subject's tokens now (and refuses to cache them again), before anything
        # else can read them; other processes re-check within their cache TTL.
        self._cache.forget_subject(subject_id)
        keyring.destroy_data_key(session, subject.key_id)
        deleted = session.execute(delete(VaultLookup).where(VaultLookup.subject_id == subject_id)).rowcount
        subject.status, subject.erased_at, subject.sealed, subject.updated_at = ERASED, now, None, now
        all_pseudonyms = {d: p for d, p in session.execute(
            select(VaultPseudonym.domain, VaultPseudonym.pseudonym).where(VaultPseudonym.subject_id == subject_id))}
        session.flush()
        certificate_id = "ec_" + crypto.random_letters()
        details = {"domain": domain, "key_id": subject.key_id, "lookups_deleted": deleted, "reason": reason,
                   "certificate_id": certificate_id}
        entry_id = audit.record(session, actor=actor, action="vault.shred", object_type="vault_subject",
                                object_id=pseudonym, organization_id=org, details=details)
        head = audit.sign_tree_head(session, keyring)  # in this transaction: it covers the new entry
        entry = audit.get_entry(session, entry_id)
        proof = audit.prove_entry(session, entry, head.tree_size)
        organization = auth.get_organization(session, org)
        body = {
            "type": certificates.CERTIFICATE_TYPE,
            "id": certificate_id,
            "issued_at": utcnow().isoformat(timespec="microseconds"),
            "organization_id": org,
            "organization_bin": organization.bin,
            "pseudonym": pseudonym,
            "domain": domain,
            "pseudonyms": all_pseudonyms,
            "subject_id": subject_id,
            "erased_at": now.isoformat(timespec="microseconds"),
            "key_id": subject.key_id,
            "key_destroyed": True,
            "lookups_deleted": deleted,
            "reason": reason,
            "actor": actor,
            "audit": {
                "entry_id": entry_id,
                "leaf": audit.entry_leaf_bytes(entry).hex(),
                "details": entry.details,
                "inclusion_proof": {"tree_size": proof.tree_size, "leaf_hash": proof.leaf_hash.hex(),
                                    "path": [p.hex() for p in proof.path]},
                "tree_head": head.to_dict(),
                "tree_head_public_key": audit.public_key(session, keyring).hex(),
            },
        }
        certificate = certificates.sign(body, certificates.signing_key(session, keyring))
        session.add(ErasureCertificateRecord(
            organization_id=org, certificate_id=certificate_id, subject_id=subject_id, pseudonym=pseudonym,
            domain=domain, key_id=subject.key_id, audit_entry_id=entry_id, tree_size=head.tree_size, erased_at=now,
            actor=actor, reason=reason, document=certificate.text))
        session.flush()
        return certificate

    # -- certificates --------------------------------------------------------------------------

    def list_certificates(self, session: Session, *, limit: int = 50,
                          before: datetime | None = None) -> list[CertificateSummary]:
        self._org(session)
        stmt = select(ErasureCertificateRecord).order_by(ErasureCertificateRecord.erased_at.desc(),
                                                         ErasureCertificateRecord.id.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(ErasureCertificateRecord.erased_at < before)
        return [CertificateSummary(r.certificate_id, r.pseudonym, r.domain, r.erased_at, r.key_id, r.audit_entry_id,
                                   r.actor, r.reason) for r in session.scalars(stmt)]

    def get_certificate(self, session: Session, certificate_id: str) -> ErasureCertificate:
        self._org(session)
        record = None
        if isinstance(certificate_id, str) and len(certificate_id) <= 32:
            record = session.scalar(select(ErasureCertificateRecord)
                                    .where(ErasureCertificateRecord.certificate_id == certificate_id))
        if record is None:
            raise NotFound("no erasure certificate with this id", field="certificate_id")
        return certificates.parse(record.document)

    def certificate_keys(self, session: Session, *, create: bool = True) -> dict[str, str]:
        """The two public keys a certificate verifier should pin (hex): certificates and tree heads.

        ``create=False`` (a read session) raises :class:`NotFound` when no certificate was ever signed."""
        if create:
            certificate_key = certificates.public_key(session, self.platform.keyring)
        else:
            signer = Ed25519PrivateKey.from_private_bytes(
                self.platform.keyring.data_key(session, certificates.SIGNING_KEY_ID))
            certificate_key = signer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"certificate_public_key": certificate_key.hex(),
                "audit_public_key": audit.public_key(session, self.platform.keyring).hex()}

    def verify_certificate(self, session: Session, certificate: ErasureCertificate | str | bytes) -> CertificateVerification:
        """Offline checks pinned to this platform's keys, plus: the audit entry is still stored, unaltered."""
        try:
            pins = self.certificate_keys(session, create=False)
        except NotFound:
            pins = {"certificate_public_key": "none: this platform has not signed any certificate",
                    "audit_public_key": audit.public_key(session, self.platform.keyring).hex()}
        result = certificates.verify_certificate(certificate, **pins)
        if result.certificate_id is None or not isinstance(certificate, (ErasureCertificate, str, bytes)):
            return result
        cert = certificate if isinstance(certificate, ErasureCertificate) else certificates.parse(certificate)
        try:
            entry_id = int(cert.body["audit"]["entry_id"])
            entry = audit.get_entry(session, entry_id)
            same = audit.entry_leaf_bytes(entry).hex() == cert.body["audit"]["leaf"]
            result.add("audit entry stored", same, f"entry {entry_id} is in this platform's log"
                       if same else f"entry {entry_id} differs from the one in the certificate")
        except (NotFound, KeyError, TypeError, ValueError):
            result.add("audit entry stored", False, "the entry is not in this organization's audit log")
        return result

    # -- statistics and the re-identification log ----------------------------------------------

    def stats(self, session: Session, *, days: int = 30) -> VaultStats:
        self._org(session)
        mask = VaultSubject.type_mask
        sums = [func.coalesce(func.sum((mask.op("&")(bit) != 0).cast(Integer_)), 0) for bit in TYPE_BITS.values()]
        sums.append(func.coalesce(func.sum((mask.op("&")(OTHER_TYPE_BIT) != 0).cast(Integer_)), 0))
        active_rows = session.execute(select(func.count(), *sums).where(VaultSubject.status == ACTIVE)).one()
        by_status = dict(session.execute(select(VaultSubject.status, func.count()).group_by(VaultSubject.status)).all())
        with_invalid = session.scalar(select(func.count()).where(VaultSubject.status == ACTIVE,
                                                                 VaultSubject.has_invalid.is_(True))) or 0
        by_type = {t: int(n) for t, n in zip([*TYPE_BITS, "OTHER"], active_rows[1:]) if n}
        purposes: dict[str, int] = {}
        for event_ in self.reidentification_log(session, since=utcnow() - timedelta(days=days), limit=100_000):
            purposes[event_.purpose] = purposes.get(event_.purpose, 0) + event_.count
        return VaultStats(
            subjects=sum(by_status.values()), active=by_status.get(ACTIVE, 0), erased=by_status.get(ERASED, 0),
            with_invalid=with_invalid, by_type=by_type,
            lookups=session.scalar(select(func.count()).select_from(VaultLookup)) or 0,
            pseudonyms=session.scalar(select(func.count()).select_from(VaultPseudonym)) or 0,
            certificates=session.scalar(select(func.count()).select_from(ErasureCertificateRecord)) or 0,
            reidentifications=dict(sorted(purposes.items())), days=days)

    def reidentification_log(self, session: Session, *, limit: int = 50, since: datetime | None = None,
                             before: int | None = None) -> list[ReidentificationEvent]:
        """Re-identifications of this organization, newest first, read from the audit log."""
        self._org(session)
        stmt = (select(AuditEntry.id, AuditEntry.created_at, AuditEntry.actor, AuditEntry.action, AuditEntry.details)
                .where(AuditEntry.action.in_(REIDENTIFY_ACTIONS)).order_by(AuditEntry.id.desc()).limit(limit))
        if since is not None:
            stmt = stmt.where(AuditEntry.created_at >= since)
        if before is not None:
            stmt = stmt.where(AuditEntry.id < before)
        return [ReidentificationEvent(entry_id, at, actor, str(details.get("purpose", "")),
                                      str(details.get("domain", "")), int(details.get("count", 0)),
                                      action == "vault.detokenize_many")
                for entry_id, at, actor, action, details in session.execute(stmt)]

    def reidentifications_by_day(self, session: Session, *, days: int = 30) -> list[tuple[str, str, int]]:
        """(date, purpose, subjects re-identified) for the last ``days`` days, oldest first."""
        counts: dict[tuple[str, str], int] = {}
        for event_ in self.reidentification_log(session, since=utcnow() - timedelta(days=days), limit=100_000):
            slot = (event_.at.date().isoformat(), event_.purpose)
            counts[slot] = counts.get(slot, 0) + event_.count
        return [(day, purpose, n) for (day, purpose), n in sorted(counts.items())]


def _mask_of(ids: Mapping[str, Sequence[str]]) -> int:
    mask = 0
    for entity_type, values in ids.items():
        if values:
            mask |= _type_bit(entity_type)
    return mask


_VAULT_ATTRIBUTE = "_qorgau_vault"


def vault_for(platform: Platform) -> Vault:
    """The platform's one :class:`Vault` (created, and the master key checked, on first use). The API, the
    web pages and the CLI share it, so checks added to ``reidentification_checks`` apply to all three."""
    return shared(platform, _VAULT_ATTRIBUTE, Vault)
