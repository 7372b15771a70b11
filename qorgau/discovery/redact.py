"""Redaction: replace the personal data a scan found, in texts and in tables.

Five operators, chosen for the whole text, per entity type, or (in tables) per column:

* ``mask`` keeps the shape and hides characters: identifiers through :func:`qorgau.identifiers.mask`
  (``79******2728``, ``+7 701 *** ** 78``, ``a***@gov.kz``), anything else with every letter and digit
  replaced by ``*`` (``Жаксылыков Е.Б.`` → ``********** *.*.``), so the length and punctuation stay.
* ``replace`` writes placeholders ``[KZ_IIN_1]``, ``[PERSON_2]`` … numbered by first appearance per
  type and *stable within a document*: the same value (after normalization, below) always gets the
  same placeholder, so a redacted text can still be read ("[PERSON_1] called [PERSON_2], then
  [PERSON_1] …").
* ``hash`` writes ``KZ_IIN:hmac:<16 hex>``, a keyed HMAC-SHA256 of the normalized value. Never
  unkeyed: an IIN has ≈ 9·10⁸ valid values, so an unkeyed hash is reversed in minutes (LEGAL.md,
  § Identifiers). The key is the organization's data key (:func:`organization_hash_key`), so the same
  person hashes the same across that organization's documents, and differently in another's.
* ``encrypt`` writes ``ENC[<base64url>]``: AES-256-GCM through :meth:`qorgau.core.keys.KeyRing.encrypt`
  with the organization's data key; :func:`unredact_text` reverses it for holders of that key, and
  destroying the key crypto-shreds every copy.
* ``drop`` removes the span.

Values are normalized before ``replace`` and ``hash`` so that one person is one token however the value
was written: phones to E.164 (``8 (701) 234-56-78`` = ``+77012345678``), e-mails lowercased, digit
identifiers without separators, names and addresses case-folded with single spaces.

Redaction is a form of depersonalization (L-PD-DEPERS, PD law Art.1(7), mandatory before research use
by Art.17); ``hash`` and ``encrypt`` are pseudonymization, since the key holder can link or reverse them.

Nothing here logs or raises with a value: errors name the field (``operator``, ``per_type.KZ_IIN``,
``findings[3]``) and :class:`RedactionResult`'s ``repr`` shows sizes only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from ..core.errors import IntegrityFailure, InvalidInput
from ..identifiers import IdentifierError, mask, normalize_email, normalize_phone, parse_passport
from .engine import finding_rank
from .types import Finding

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..core.keys import KeyRing
    from .engine import Scanner

Operator = Literal["mask", "replace", "hash", "encrypt", "drop"]
OPERATORS: tuple[str, ...] = get_args(Operator)

# Entity types that are identifier kinds of :mod:`qorgau.identifiers` (its masks know their shape).
IDENTIFIER_KIND: dict[str, str] = {
    "KZ_IIN": "KZ_IIN", "KZ_BIN": "KZ_BIN", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL",
    "IBAN_CODE": "IBAN", "CREDIT_CARD": "CARD", "KZ_PASSPORT": "KZ_PASSPORT", "KZ_ID_CARD": "KZ_ID_CARD",
}

MEMO_LIMIT = 65_536  # distinct (operator, type, value) results remembered per document
HASH_HEX_CHARS = 16  # 64 bits: no collisions in practice inside one organization, short enough to read
HASH_KEY_PURPOSE = "redaction-hmac"
ENCRYPT_KEY_PURPOSE = "redaction-encrypt"
ENCRYPT_AAD = b"qorgau-redact-v1"
_HMAC_DOMAIN = b"qorgau-redact-v1\x00"
_ENC_TOKEN = re.compile(r"ENC\[([A-Za-z0-9_-]+)\]")
_ALNUM = re.compile(r"[^\W_]")  # letters and digits, any script
_SPACES = re.compile(r"\s+")
_DOTTED_DATE = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")

Encryptor = Callable[[bytes], bytes]
Decryptor = Callable[[bytes], bytes]


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedactedItem:
    """One redacted span: where it was (``start``/``end``), where its replacement is now."""

    type: str
    start: int
    end: int
    new_start: int
    new_end: int
    operator: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "start": self.start, "end": self.end, "new_start": self.new_start,
                "new_end": self.new_end, "operator": self.operator}


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """The redacted text and what was replaced. ``repr`` shows sizes, never the text (it may keep PII
    that no recognizer found, or encrypted/hashed tokens that link records)."""

    text: str
    items: list[RedactedItem] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(item.type for item in self.items))

    def __repr__(self) -> str:
        return f"RedactionResult(text=<{len(self.text)} chars>, items={len(self.items)})"


# --- normalization: one person, one token ----------------------------------------------------------


def normalized_value(entity_type: str, value: str) -> str:
    """The canonical spelling of ``value`` read as ``entity_type``, for ``replace`` and ``hash``.

    Falls back to a case-folded, space-collapsed form when the value does not parse as its type (a
    finding scored on context alone), so normalization never fails.
    """
    text = value.strip()
    if entity_type in ("KZ_IIN", "KZ_BIN", "CREDIT_CARD", "KZ_ID_CARD"):
        digits = "".join(ch for ch in text if ch.isdigit())
        return digits or _folded(text)
    if entity_type == "PHONE_NUMBER":
        try:
            return normalize_phone(text)
        except IdentifierError:
            return "".join(ch for ch in text if ch.isdigit()) or _folded(text)
    if entity_type == "EMAIL_ADDRESS":
        try:
            return normalize_email(text)
        except IdentifierError:
            return _folded(text)
    if entity_type in ("IBAN_CODE", "KZ_VEHICLE_PLATE"):
        return "".join(text.split()).upper()
    if entity_type == "KZ_PASSPORT":
        try:
            return parse_passport(text).value
        except IdentifierError:
            return "".join(text.split()).upper()
    if entity_type == "IP_ADDRESS":
        try:
            return ipaddress.ip_address(text).compressed
        except ValueError:
            return _folded(text)
    if entity_type == "DATE_OF_BIRTH":
        return _normalized_date(text)
    return _folded(text)


def _folded(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def _normalized_date(text: str) -> str:
    m = _DOTTED_DATE.fullmatch(text)
    if m:
        return f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    m = _ISO_DATE.fullmatch(text)
    if m:
        return f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    return _folded(text)


# --- the operators ---------------------------------------------------------------------------------


def mask_value(entity_type: str, value: str) -> str:
    """``mask``: the identifier's own masked form, or every letter and digit replaced by ``*``."""
    kind = IDENTIFIER_KIND.get(entity_type)
    if kind is not None:
        try:
            return mask(kind, value)  # type: ignore[arg-type]
        except (IdentifierError, ValueError, TypeError):
            pass
    return _ALNUM.sub("*", value)


def hash_value(entity_type: str, value: str, key: bytes) -> str:
    """``hash``: ``TYPE:hmac:<16 hex>`` of the normalized value under ``key`` (HMAC-SHA256)."""
    digest = hmac.new(key, _HMAC_DOMAIN + normalized_value(entity_type, value).encode("utf-8"),
                      hashlib.sha256).hexdigest()
    return f"{entity_type}:hmac:{digest[:HASH_HEX_CHARS]}"


def encrypt_value(value: str, encryptor: Encryptor) -> str:
    """``encrypt``: ``ENC[<base64url of the ciphertext>]``; the original spelling is kept, not normalized."""
    token = base64.urlsafe_b64encode(encryptor(value.encode("utf-8"))).rstrip(b"=").decode("ascii")
    return f"ENC[{token}]"


class Placeholders:
    """``replace``'s numbering: per type, by first appearance, the same value → the same placeholder.

    One instance is one document: share it across the cells of a table or the records of a file so that
    a person keeps their placeholder everywhere in it. Holds normalized values in memory only; its
    ``repr`` shows counts.
    """

    __slots__ = ("_raw", "_seen")

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, str]] = {}  # type -> normalized value -> placeholder
        self._raw: dict[tuple[str, str], str] = {}  # (type, value as written) -> placeholder: skips normalizing

    def placeholder(self, entity_type: str, value: str) -> str:
        token = self._raw.get((entity_type, value))
        if token is not None:
            return token
        per_type = self._seen.setdefault(entity_type, {})
        key = normalized_value(entity_type, value)
        token = per_type.get(key)
        if token is None:
            token = per_type[key] = f"[{entity_type}_{len(per_type) + 1}]"
        self._raw[(entity_type, value)] = token
        return token

    def __repr__(self) -> str:
        return f"Placeholders({ {t: len(v) for t, v in self._seen.items()} })"


# --- the redactor ----------------------------------------------------------------------------------


def check_operator(value: object, where: str) -> str:
    """``value`` if it names an operator, else :class:`InvalidInput` naming ``where``."""
    if value not in OPERATORS:
        raise InvalidInput(f"unknown redaction operator; use one of: {', '.join(OPERATORS)}", field=where)
    return value  # type: ignore[return-value]


class Redactor:
    """Applies the chosen operators to findings; one instance per document (placeholders, counts).

    ``operator`` applies to every type not in ``per_type``; ``columns`` (tables only) gives a whole-column
    operator by column name. ``hash_key`` is needed when any operator is ``hash``, ``encryptor`` when any
    is ``encrypt``: checked here, before anything is redacted.

    ``counts`` (per entity type) and ``operators`` (per operator) say what was redacted; they never hold
    values, so they can go into reports and audit entries.
    """

    def __init__(self, *, operator: str = "mask", per_type: Mapping[str, str] | None = None,
                 columns: Mapping[str, str] | None = None, hash_key: bytes | None = None,
                 encryptor: Encryptor | None = None) -> None:
        self.operator = check_operator(operator, "operator")
        self.per_type = {t: check_operator(op, f"per_type.{t}") for t, op in (per_type or {}).items()}
        self.columns = {c: check_operator(op, f"columns.{c}") for c, op in (columns or {}).items()}
        used = {self.operator, *self.per_type.values(), *self.columns.values()}
        if "hash" in used and not hash_key:
            raise InvalidInput("the hash operator needs a key (hashing without a key is reversible)",
                               field="hash_key")
        if "encrypt" in used and encryptor is None:
            raise InvalidInput("the encrypt operator needs an encryption key", field="encryptor")
        self._hash_key = hash_key
        self._encryptor = encryptor
        self.placeholders = Placeholders()
        self.counts: Counter[str] = Counter()
        self.operators: Counter[str] = Counter()
        # mask and hash are pure but slow for phones (libphonenumber): memoized per document, never
        # process-wide, so redacted values do not outlive the document in memory.
        self._memo: dict[tuple[str, str, str], str] = {}

    def __repr__(self) -> str:
        return (f"Redactor(operator={self.operator!r}, per_type={self.per_type!r}, columns={self.columns!r}, "
                f"redacted={sum(self.counts.values())})")

    def operator_for(self, entity_type: str) -> str:
        return self.per_type.get(entity_type, self.operator)

    def replacement(self, entity_type: str, value: str, operator: str) -> str:
        """What ``value`` (of ``entity_type``) becomes under ``operator``."""
        if operator == "replace":
            return self.placeholders.placeholder(entity_type, value)
        if operator in ("mask", "hash"):
            slot = (operator, entity_type, value)
            done = self._memo.get(slot)
            if done is None:
                if len(self._memo) >= MEMO_LIMIT:
                    self._memo.clear()
                done = self._memo[slot] = self._pure(entity_type, value, operator)
            return done
        if operator == "encrypt":
            assert self._encryptor is not None  # checked in __init__
            return encrypt_value(value, self._encryptor)
        return ""  # drop

    def _pure(self, entity_type: str, value: str, operator: str) -> str:
        if operator == "mask":
            return mask_value(entity_type, value)
        assert self._hash_key is not None  # checked in __init__
        return hash_value(entity_type, value, self._hash_key)

    def redact_text(self, text: str, findings: Iterable[Finding]) -> RedactionResult:
        """Replace every finding's span; offsets of the result's items point into both texts."""
        spans = _disjoint_spans(text, findings)
        return _apply(text, spans, self)

    def redact_value(self, entity_type: str, value: str, operator: str) -> str:
        """A whole value (a table cell) under ``operator``, counted under ``entity_type``."""
        if not value:
            return value
        self.counts[entity_type] += 1
        self.operators[operator] += 1
        return self.replacement(entity_type, value, operator)

    def redact_row(self, row: Mapping[str, Any], scanner: Scanner, *,
                   only: Sequence[str] | None = None) -> dict[str, Any]:
        """One table row: whole-column operators for ``columns``, free-text scanning for the others.

        ``only`` limits free-text scanning to those columns (the others are copied unchanged), as the
        JSON Lines ``--text-field`` option does. Nested lists and objects are scanned throughout.
        """
        out: dict[str, Any] = {}
        for name, value in row.items():
            operator = self.columns.get(name)
            if operator is not None:
                out[name] = self._redact_cell(value, operator, scanner)
            elif only is None or name in only:
                out[name] = self.scan_value(value, scanner)
            else:
                out[name] = value
        return out

    def redact_whole(self, value: Any, operator: str, scanner: Scanner) -> Any:
        """A whole value (a cell of a ``columns`` column, a document's author) under ``operator``.

        Typed when one finding covers all of it (so hashes and placeholders join with free text), else
        counted as ``VALUE``. ``None``, ``""`` and booleans come back unchanged; other values as text.
        """
        return self._redact_cell(value, operator, scanner)

    def _redact_cell(self, value: Any, operator: str, scanner: Scanner) -> Any:
        if value is None or value == "" or isinstance(value, bool):
            return value
        text = value if isinstance(value, str) else _as_text(value)
        entity_type = _cell_type(text, scanner)
        return self.redact_value(entity_type, text, operator)

    def scan_value(self, value: Any, scanner: Scanner) -> Any:
        """A cell or JSON value scanned as free text (numbers too, nested lists and objects throughout)."""
        if isinstance(value, str):
            return self.redact_text(value, scanner.scan(value)).text if value else value
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, (int, float)):
            # 77012345678 or an IIN stored as a number is still personal data.
            text = _as_text(value)
            findings = scanner.scan(text)
            return self.redact_text(text, findings).text if findings else value
        if isinstance(value, Mapping):
            return {k: self.scan_value(v, scanner) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scan_value(v, scanner) for v in value]
        return value


CELL_TYPE = "VALUE"  # the label of a whole-column cell in which no single entity was recognized


def _cell_type(text: str, scanner: Scanner) -> str:
    """The type of a cell's value when one finding covers all of it (stripped), else ``VALUE``.

    A typed label keeps whole-column hashes and placeholders joinable with the same value in free text.
    """
    stripped = text.strip()
    findings = scanner.scan(stripped) if stripped else []
    if len(findings) == 1 and findings[0].start == 0 and findings[0].end == len(stripped):
        return findings[0].type
    return CELL_TYPE


def _as_text(value: Any) -> str:
    return str(value)


def _disjoint_spans(text: str, findings: Iterable[Finding]) -> list[tuple[int, int, Finding]]:
    """Findings as sorted, non-overlapping spans; overlapping ones (not from a scanner) are merged.

    A merged span takes the type of its strongest finding (the scanner's overlap rank) and covers the
    union: redaction must never leave part of a value visible because two findings disagreed.
    """
    ordered: list[tuple[int, int, Finding]] = []
    for i, f in enumerate(findings):
        if not (0 <= f.start < f.end <= len(text)):
            raise InvalidInput("finding offsets are outside the text", field=f"findings[{i}]")
        ordered.append((f.start, f.end, f))
    ordered.sort(key=lambda s: (s[0], s[1]))
    merged: list[tuple[int, int, Finding]] = []
    for start, end, f in ordered:
        if merged and start < merged[-1][1]:
            m_start, m_end, m_f = merged[-1]
            strongest = m_f if finding_rank(m_f) <= finding_rank(f) else f
            merged[-1] = (m_start, max(m_end, end), strongest)
        else:
            merged.append((start, end, f))
    return merged


def _apply(text: str, spans: list[tuple[int, int, Finding]], redactor: Redactor) -> RedactionResult:
    """The hot loop: copy the text between spans, the replacement for each span (one pass, one join)."""
    parts: list[str] = []
    items: list[RedactedItem] = []
    position = 0  # in the original text
    written = 0  # length of the output so far
    for start, end, finding in spans:
        gap = text[position:start]
        parts.append(gap)
        written += len(gap)
        operator = redactor.operator_for(finding.type)
        new = redactor.replacement(finding.type, text[start:end], operator)
        parts.append(new)
        items.append(RedactedItem(finding.type, start, end, written, written + len(new), operator))
        redactor.counts[finding.type] += 1
        redactor.operators[operator] += 1
        written += len(new)
        position = end
    parts.append(text[position:])
    return RedactionResult("".join(parts), items)


# --- one-call API -----------------------------------------------------------------------------------


def redact_text(text: str, findings: Iterable[Finding], *, operator: str = "mask",
                per_type: Mapping[str, str] | None = None, hash_key: bytes | None = None,
                encryptor: Encryptor | None = None) -> RedactionResult:
    """Redact one document: ``findings`` (from :meth:`Scanner.scan`) replaced by ``operator`` (or
    ``per_type[type]``). Placeholders are numbered within this call."""
    redactor = Redactor(operator=operator, per_type=per_type, hash_key=hash_key, encryptor=encryptor)
    return redactor.redact_text(text, findings)


def redact_table(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, str] | None, scanner: Scanner, *,
                 operator: str = "mask", per_type: Mapping[str, str] | None = None,
                 hash_key: bytes | None = None, encryptor: Encryptor | None = None,
                 redactor: Redactor | None = None, only: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Redact rows lazily: ``columns`` get a whole-column operator, other cells are scanned as free text.

    The table is one document (placeholders are stable across its rows). Pass your own ``redactor`` to
    read its ``counts`` afterwards; the keyword options then come from it. Options are checked before
    the first row is read.
    """
    if redactor is None:
        redactor = Redactor(operator=operator, per_type=per_type, columns=columns, hash_key=hash_key,
                            encryptor=encryptor)
    return _rows(rows, redactor, scanner, only)


def _rows(rows: Iterable[Mapping[str, Any]], redactor: Redactor, scanner: Scanner,
          only: Sequence[str] | None) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield redactor.redact_row(row, scanner, only=only)


def unredact_text(text: str, decryptor: Decryptor) -> str:
    """Reverse the ``encrypt`` operator: every ``ENC[…]`` token decrypted with ``decryptor``.

    A token that does not decode or fails authentication (tampered, another organization's key) raises
    :class:`IntegrityFailure`, naming the token's position, not its content.
    """

    def decrypt(m: re.Match[str]) -> str:
        token = m.group(1)
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            blob = b""
        if not blob:
            raise IntegrityFailure(f"encrypted token at character {m.start()} is not valid base64url")
        plain = decryptor(blob)
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise IntegrityFailure(f"encrypted token at character {m.start()} is not text") from None

    return _ENC_TOKEN.sub(decrypt, text)


# --- keys of an organization (the key provider, L-PD-SPLIT's "encrypted per subject" vault habit) -----


def hash_key_id(organization_id: int) -> str:
    return f"redact-hmac-org-{organization_id}"


def encryption_key_id(organization_id: int) -> str:
    return f"redact-enc-org-{organization_id}"


def organization_hash_key(session: Session, keyring: KeyRing, organization_id: int) -> bytes:
    """The organization's HMAC key for ``hash`` (created on first use, wrapped by the master key)."""
    return keyring.get_or_create(session, hash_key_id(organization_id), HASH_KEY_PURPOSE)


def organization_encryptor(session: Session, keyring: KeyRing, organization_id: int) -> Encryptor:
    """An encryptor bound to the organization's data key; valid while ``session`` is open."""
    key_id = encryption_key_id(organization_id)
    keyring.get_or_create(session, key_id, ENCRYPT_KEY_PURPOSE)

    def encryptor(plaintext: bytes) -> bytes:
        return keyring.encrypt(session, key_id, plaintext, ENCRYPT_AAD)

    return encryptor


def organization_decryptor(session: Session, keyring: KeyRing, organization_id: int) -> Decryptor:
    """A decryptor that opens only this organization's tokens (any data key would decrypt its own
    ciphertexts, so the key id inside each token is checked first)."""
    from ..core.keys import parse_ciphertext

    key_id = encryption_key_id(organization_id)

    def decryptor(blob: bytes) -> bytes:
        if parse_ciphertext(blob)[0] != key_id:
            raise IntegrityFailure("encrypted token was not made with this organization's key")
        return keyring.decrypt(session, blob, ENCRYPT_AAD)

    return decryptor
