"""Finding a vault subject from a pseudonym or an identifier — the vault's public lookup API for hot paths.

Other modules that must resolve a subject *inside their own SQL statement* (the consent decision point
answers a check with one statement, so the subject is resolved in it) use this module instead of reading
the vault's tables and keys by themselves. It gives:

* :func:`subject_id_sql` — a scalar subquery (driver-level SQL, ``?`` or ``%s`` placeholders) that yields
  the subject id of a pseudonym (``vault_pseudonyms``) or of an identifier's blind index (``vault_lookups``),
  or NULL. Its parameters are :meth:`SubjectLookup.pseudonym_params` / :meth:`SubjectLookup.identifier_params`;
  both filter on ``organization_id`` themselves (driver-level SQL bypasses the ORM's tenant filter).
* :func:`subject_status_sql` — the subject's status (``active`` / ``erased``) by id.
* :class:`SubjectLookup` — validates and normalizes an identifier the way the vault stores it and computes
  its keyed blind index with the organization's blind-index key (unwrapped once per process, only once it
  exists: an organization that never stored a subject has no key, and then nothing is found).
* :func:`lookups_of` — the (type, blind index) pairs of a subject, e.g. to keep a tombstone before a shred.

Nothing here decrypts an identity or returns an identifier: blind indexes are keyed HMACs (see
:mod:`qorgau.vault.crypto`), subject ids are internal integers.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.db import tenant_of
from ..core.errors import InvalidInput, NotFound
from ..identifiers import is_valid_iin
from . import crypto
from .models import VaultLookup
from .service import LOOKUP_TYPES, check_identifier
from ..core.platform import shared

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = ["BY_IDENTIFIER", "BY_PSEUDONYM", "SubjectLookup", "blind_key_id", "lookup_for", "lookups_of",
           "subject_id_sql", "subject_status_sql"]

BY_PSEUDONYM = "pseudonym"
BY_IDENTIFIER = "identifier"
MAX_VALUE_CHARS = 1000
PSEUDONYM_LENGTH = 29  # "ps_" + 26 letters
_DOMAIN = re.compile(r"[a-z0-9_-]{1,40}")
_NO_MATCH = b"\x00" * 32  # a blind index nothing has (HMAC outputs are never all zero in practice)


def blind_key_id(organization_id: int) -> str:
    """The key-ring id of an organization's blind-index key (the vault creates it with its first subject)."""
    return f"dk-vault-bi-{organization_id}"


def subject_id_sql(by: str, placeholder: str) -> str:
    """A scalar subquery yielding the subject id (or NULL) — for composing into one statement.

    ``by`` is :data:`BY_PSEUDONYM` (parameters: organization id, domain, pseudonym) or :data:`BY_IDENTIFIER`
    (organization id, entity type, blind index). Both probe a unique index.
    """
    p = placeholder
    if by == BY_PSEUDONYM:
        return (f"SELECT subject_id FROM vault_pseudonyms "
                f"WHERE organization_id = {p} AND domain = {p} AND pseudonym = {p}")
    if by == BY_IDENTIFIER:
        return (f"SELECT subject_id FROM vault_lookups "
                f"WHERE organization_id = {p} AND entity_type = {p} AND blind_index = {p}")
    raise ValueError(f"unknown subject reference kind {by!r}")


def subject_status_sql(placeholder: str) -> str:
    """The status of a subject (``active`` / ``erased``); parameters: organization id, subject id."""
    p = placeholder
    return f"SELECT status FROM vault_subjects WHERE organization_id = {p} AND id = {p}"


def lookups_of(session: Session, subject_id: int) -> list[tuple[str, bytes]]:
    """The (entity type, blind index) pairs that find ``subject_id`` now (a tenant-scoped session)."""
    if tenant_of(session) is None:
        raise InvalidInput("lookups need a session scoped to one organization", field="organization_id")
    rows = session.execute(select(VaultLookup.entity_type, VaultLookup.blind_index)
                           .where(VaultLookup.subject_id == subject_id)).all()
    return [(str(t), bytes(b)) for t, b in rows]


class SubjectLookup:
    """Validates references and computes blind indexes for one platform. Thread-safe; share one per process."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._keys: dict[int, bytes] = {}
        self._domains: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SubjectLookup(db={self.platform.db.dialect}, keys={len(self._keys)})"

    def blind_key(self, organization_id: int) -> bytes | None:
        """The organization's blind-index key, or None while it has none (it never stored a subject).

        Read from the key ring (unwrapped by the master key) once, then kept for the process: the key never
        changes once created. A missing key is not remembered (the vault may create it any time).
        """
        key = self._keys.get(organization_id)
        if key is not None:
            return key
        with self.platform.db.reader(organization_id) as session:
            try:
                key = self.platform.keyring.data_key(session, blind_key_id(organization_id))
            except NotFound:
                return None
        with self._lock:
            self._keys[organization_id] = key
        return key

    def pseudonym_params(self, organization_id: int, pseudonym: Any, domain: Any = "default") -> tuple[Any, ...]:
        """Parameters of :func:`subject_id_sql` for a pseudonym; ``InvalidInput`` names the bad field."""
        if not isinstance(pseudonym, str) or len(pseudonym) != PSEUDONYM_LENGTH or not pseudonym.startswith("ps_"):
            raise InvalidInput("pseudonym must be 'ps_' followed by 26 letters a-z", field="subject.pseudonym")
        if domain not in self._domains:
            if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
                raise InvalidInput("domain must be 1–40 characters of a-z, 0-9, '_' and '-'", field="subject.domain")
            if len(self._domains) < 1000:
                self._domains.add(domain)
        return (organization_id, domain, pseudonym)

    def identifier_params(self, organization_id: int, entity_type: Any, value: Any) -> tuple[Any, ...]:
        """Parameters of :func:`subject_id_sql` for an identifier (validated, normalized, blind-indexed).

        An invalid identifier raises ``InvalidInput`` naming ``subject.identifier`` (never the value). When the
        organization has no blind-index key yet, the blind index is one nothing matches.
        """
        if entity_type not in LOOKUP_TYPES:
            raise InvalidInput(f"identifier type must be one of {', '.join(sorted(LOOKUP_TYPES))}",
                               field="subject.identifier_type")
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_VALUE_CHARS:
            raise InvalidInput("identifier value is required", field="subject.identifier")
        if entity_type == "KZ_IIN" and len(value) == 12 and value.isdigit() and is_valid_iin(value):
            normalized = value  # the common case, without the general normalizer (same result: tested)
        else:
            normalized, problem = check_identifier(entity_type, value)
            if problem is not None:
                raise InvalidInput(f"not a valid {entity_type}: {problem}", field="subject.identifier")
        key = self.blind_key(organization_id)
        blind = crypto.blind_index(key, entity_type, normalized) if key is not None else _NO_MATCH
        return (organization_id, entity_type, blind)


_ATTRIBUTE = "_qorgau_vault_lookup"


def lookup_for(platform: Platform) -> SubjectLookup:
    """The platform's one :class:`SubjectLookup`."""
    return shared(platform, _ATTRIBUTE, SubjectLookup)
