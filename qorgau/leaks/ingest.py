"""Two-phase ingest of leak files into the token index (issue 8, "Leaked identifiers"; L-PD-BREACH,
L-PD-LEAK-REGISTER).

1. **Upload** (:meth:`LeakIngest.upload`): the file is stream-parsed (CSV with any delimiter, JSON Lines, XLSX,
   plain-text dumps such as Telegram-bot output); identifiers are found with the discovery engine
   (``KZ_IIN``, ``PHONE_NUMBER``, ``EMAIL_ADDRESS``) or read from a column the uploader named, normalized
   (:func:`qorgau.leaks.register.normalize`: IIN checked, phones E.164, emails lower-case) and deduplicated per
   kind. The normalized ``kind<TAB>value`` lines go to ``<data_dir>/leaks/spool/<public_id>`` (mode 0600,
   fsynced): the **only** plaintext qorgau writes. The raw upload is never stored. The row keeps counts,
   masked samples (at most 5 per kind) and rejected lines — line number and reason, never the value.
2. **Confirm** (:meth:`LeakIngest.confirm`): tokens are computed from the spool (keyed OPRF, never stored in
   the clear), staged as one segment, and committed; see the protocol below. The spool is then deleted, the
   index refreshed and subscribers notified (D: ``leak_citizens_for(platform).notify_new_tokens``).
3. Unconfirmed uploads expire after ``leaks_upload_ttl_hours`` (:meth:`LeakIngest.purge_expired`, hourly):
   the spool is deleted, the row kept as ``expired``.

**Commit protocol** (a crash at any point leaves the upload's tokens all visible or none; docs/leaks-ingest.md):

a. stage: the tokens are written as ``staging/upload-<public_id>/seg-upload-<public_id>-p000000.qls``
   (``segments.stage_partition``: fsynced, invisible to lookups; a retry replaces the same file name);
b. commit: one DB transaction marks the upload ``confirmed`` (segment name, token count) and calls A's
   ``record_upload`` (the incident's ``identifiers_committed`` and its history) — the spool path stays set,
   meaning "publish pending";
c. publish: ``segments.publish_staged`` adds the segment to the manifest (one atomic replacement);
d. finish: the spool is deleted and ``spool_path`` cleared (publish done), the index refreshed, subscribers
   notified.

:meth:`LeakIngest.reconcile` (at service start, in the hourly job, and when a confirmed upload is confirmed
again) finishes every confirmed upload whose ``spool_path`` is still set: a segment already visible (listed,
or all its tokens found for the incident — it may have been merged since) is left alone; otherwise it is
published from staging, from a renamed-but-unlisted file, or re-staged from the spool. Staging directories
of uploads that are expired, discarded or unknown are deleted; a crash before (b) leaves the upload
``parsed`` and a later confirm replaces the staged file — no duplicates.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import fcntl
import io
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import audit
from ..core.db import tenant_of, utcnow
from ..core.errors import Conflict, InvalidInput, NotFound
from ..core.platform import shared
from . import segments
from .models import UPLOAD_FORMATS, LeakIncident, LeakIncidentEvent, LeakUpload
from .register import KINDS, index_directory, leak_index_for, leak_keys_for, mask, try_normalize

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = ["MAX_REJECTED", "MAX_SAMPLES", "LeakIngest", "UploadView", "ingest_for", "run_periodic"]

log = logging.getLogger(__name__)

MAX_SAMPLES = 5            # masked samples per kind shown for review
MAX_REJECTED = 1000        # rejected lines kept on the row; rejected_total is exact
TOKEN_BATCH = 50_000       # identifiers per OPRF batch at confirm
_SNIFF_BYTES = 1 << 17
_READ_CHUNK = 1 << 16
_ENTITY_KINDS = {"KZ_IIN": "iin", "PHONE_NUMBER": "phone", "EMAIL_ADDRESS": "email"}
_SCAN_TYPES = frozenset({"KZ_IIN", "KZ_BIN", "PHONE_NUMBER", "EMAIL_ADDRESS"})
_IIN_CANDIDATE = re.compile(r"(?<!\d)\d{12}(?!\d)")
_EMAIL_CANDIDATE = re.compile(r"[^\s,;|<>()\"'\[\]]+@[^\s,;|<>()\"'\[\]]+")
_CANDIDATE_CHAR = re.compile(r"[0-9@]")  # a line without a digit or "@" holds no identifier
_CP1251_WORD = re.compile(rb"[\xc0-\xff\xa8\xb8]{3}")
_PUBLIC_ID = re.compile(r"^lu-[0-9a-f]{20}$")
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
               ".xlsx": "xlsx", ".xlsm": "xlsx", ".txt": "text", ".log": "text"}
# Header words that name an identifier column (lower-case substrings; kk/ru/en).
_HEADER_WORDS = (("iin", ("iin", "иин", "жсн", "ЖСН".lower())),
                 ("phone", ("phone", "tel", "тел", "mobile", "моб", "msisdn", "нөмір")),
                 ("email", ("mail", "почт", "пошт")))
REJECT_REASONS = ("undecodable", "iin_invalid", "phone_invalid", "email_invalid", "no_identifier", "malformed")


# --- the review shown before confirming ------------------------------------------------------------------


@dataclass(frozen=True)
class UploadView:
    """An upload as the API, the pages and the CLI show it: counts, masked samples, rejected lines by number."""

    public_id: str
    incident_id: int
    organization_id: int
    filename: str
    format: str
    status: str
    size_bytes: int
    lines: int
    counts: dict[str, int]
    samples: dict[str, list[str]]
    rejected: list[dict[str, Any]]
    rejected_total: int
    created_at: datetime
    created_by: str
    expires_at: datetime
    confirmed_at: datetime | None
    confirmed_by: str | None
    segment_name: str | None
    tokens_committed: int
    publish_pending: bool
    error: str | None

    def __repr__(self) -> str:  # no filename, no samples: ids, status and counts only
        return f"UploadView({self.public_id}, incident={self.incident_id}, status={self.status!r}, counts={self.counts})"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def expires_in_seconds(self, now: datetime | None = None) -> int:
        return max(0, int((self.expires_at - (now or utcnow())).total_seconds()))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total"] = self.total
        out["expires_in_seconds"] = self.expires_in_seconds() if self.status == "parsed" else 0
        return out

    @classmethod
    def of(cls, row: LeakUpload) -> UploadView:
        return cls(public_id=row.public_id, incident_id=row.incident_id, organization_id=row.organization_id,
                   filename=row.filename, format=row.format, status=row.status, size_bytes=row.size_bytes,
                   lines=row.lines, counts={k: int(v) for k, v in (row.counts or {}).items()},
                   samples={k: list(v) for k, v in (row.samples or {}).items()},
                   rejected=list(row.rejected or []), rejected_total=row.rejected_total,
                   created_at=row.created_at, created_by=row.created_by, expires_at=row.expires_at,
                   confirmed_at=row.confirmed_at, confirmed_by=row.confirmed_by, segment_name=row.segment_name,
                   tokens_committed=row.tokens_committed,
                   publish_pending=row.status == "confirmed" and row.spool_path is not None, error=row.error)


# --- reading the upload -------------------------------------------------------------------------------------


class _Limited(io.RawIOBase):
    """A raw stream over the caller's file that counts bytes and refuses to read past the size limit."""

    def __init__(self, source: BinaryIO, limit: int, filename: str,
                 progress: Callable[[int], None] | None) -> None:
        self.source = source
        self.limit = limit
        self.filename = filename
        self.count = 0
        self.progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.source.read(len(view))
        if not data:
            return 0
        n = len(data)
        self.count += n
        if self.count > self.limit:
            raise InvalidInput(f"file {self.filename} is larger than the upload limit of {self.limit} bytes",
                               field="file")
        view[:n] = data
        if self.progress is not None:
            self.progress(n)
        return n


def _sniff_encoding(head: bytes) -> str:
    """utf-8-sig / utf-16 (BOM), utf-16-le/-be (NUL pattern), utf-8, or cp1251 (most non-ASCII lines are not
    UTF-8). A wrong guess never crashes: undecodable lines are reported by number."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if sample.count(0) > len(sample) // 8:
        odd = sample[1::2].count(0)
        even = sample[0::2].count(0)
        return "utf-16-le" if odd >= even else "utf-16-be"
    good = bad = 0
    for line in head.split(b"\n")[:-1] or [head]:
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            good += 1
        except UnicodeDecodeError:
            if _CP1251_WORD.search(line):  # Cyrillic words, not a stray byte or binary junk
                bad += 1
    return "cp1251" if bad > good else "utf-8"


def _sniff_format(head: bytes, filename: str) -> str:
    ext = Path(filename).suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    text = head.decode(_python_encoding(_sniff_encoding(head)), errors="replace")
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if lines and lines[0].lstrip("\ufeff").lstrip().startswith(("{", "[")):
        return "jsonl"
    return "csv" if _sniff_delimiter(lines) is not None else "text"


def _python_encoding(name: str) -> str:
    return "utf-16" if name == "utf-16" else name


def _sniff_delimiter(lines: list[str]) -> str | None:
    """The delimiter that splits (almost) every sample line into the same number of fields, if any."""
    lines = lines[:50]
    if len(lines) < 2:
        return None
    best: tuple[float, str] | None = None
    for delimiter in (",", ";", "\t", "|"):
        counts = [ln.count(delimiter) for ln in lines]
        mode = max(set(counts), key=counts.count)
        share = counts.count(mode) / len(counts)
        if mode and share >= 0.8 and (best is None or share > best[0]):
            best = (share, delimiter)
    return best[1] if best else None


def _header_kind(name: str) -> str | None:
    low = name.strip().lower()
    for kind, words in _HEADER_WORDS:
        if any(word in low for word in words):
            return kind
    return None


class _Extractor:
    """Collects one upload's identifiers: dedup per kind, spool writing, samples, rejected lines by number."""

    def __init__(self, spool: BinaryIO, scanner: Any) -> None:
        self.spool = spool
        self.scanner = scanner
        self.seen: dict[str, set[str]] = {k: set() for k in KINDS}
        self.samples: dict[str, list[str]] = {k: [] for k in KINDS}
        self.rejected: list[dict[str, Any]] = []
        self.rejected_total = 0
        self.lines = 0

    # one identifier ------------------------------------------------------------------------------------
    def add(self, kind: str, normalized: str) -> None:
        seen = self.seen[kind]
        if normalized in seen:
            return
        seen.add(normalized)
        self.spool.write(f"{kind}\t{normalized}\n".encode())
        if len(self.samples[kind]) < MAX_SAMPLES:
            self.samples[kind].append(mask(kind, normalized))

    def reject(self, line: int, reason: str, *, column: int | None = None, sheet: int | None = None) -> None:
        self.rejected_total += 1
        if len(self.rejected) < MAX_REJECTED:
            entry: dict[str, Any] = {"line": line, "reason": reason}
            if column is not None:
                entry["column"] = column
            if sheet is not None:
                entry["sheet"] = sheet
            self.rejected.append(entry)

    # one piece of text -----------------------------------------------------------------------------------
    def scan_text(self, text: str) -> tuple[int, list[str]]:
        """(identifiers found, reasons of invalid candidates) in free text: the discovery engine finds valid
        identifiers; 12-digit runs and e-mail-like words it did not accept are invalid candidates."""
        if not text or _CANDIDATE_CHAR.search(text) is None:
            return 0, []
        found = 0
        reasons: list[str] = []
        covered: list[tuple[int, int]] = []
        for finding in self.scanner.scan(text, include_text=True):
            covered.append((finding.start, finding.end))
            kind = _ENTITY_KINDS.get(finding.type)
            if kind is None:
                continue  # a BIN (an organization, not a person) or another type: not tokenized
            normalized = try_normalize(kind, finding.text or "")
            if normalized is None:
                reasons.append(f"{kind}_invalid")
                continue
            self.add(kind, normalized)
            found += 1

        def free(start: int, end: int) -> bool:
            return not any(a < end and start < b for a, b in covered)

        for m in _IIN_CANDIDATE.finditer(text):
            if free(m.start(), m.end()):
                reasons.append("iin_invalid")
        if "@" in text:
            for m in _EMAIL_CANDIDATE.finditer(text):
                if free(m.start(), m.end()):
                    reasons.append("email_invalid")
        return found, reasons

    def cell(self, value: str, kind: str | None) -> tuple[int, list[str]]:
        if kind is None:
            return self.scan_text(value)
        value = value.strip()
        if not value:
            return 0, []
        normalized = try_normalize(kind, value)
        if normalized is None:
            return 0, [f"{kind}_invalid"]
        self.add(kind, normalized)
        return 1, []

    def row(self, line: int, cells: Iterable[tuple[int, str, str | None]], *, sheet: int | None = None) -> None:
        """One record: cells as (1-based column, text, hinted kind or None)."""
        found = 0
        problems = 0
        blank = True
        for column, value, kind in cells:
            if not value or not value.strip():
                continue
            blank = False
            n, reasons = self.cell(value, kind)
            found += n
            for reason in reasons:
                problems += 1
                self.reject(line, reason, column=column, sheet=sheet)
        if not blank and not found and not problems:
            self.reject(line, "no_identifier", sheet=sheet)

    def line(self, number: int, text: str) -> None:
        if not text.strip():
            return
        found, reasons = self.scan_text(text)
        for reason in reasons:
            self.reject(number, reason)
        if not found and not reasons:
            self.reject(number, "no_identifier")


def _decoded_lines(reader: io.BufferedReader, encoding: str, ex: _Extractor) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line; an undecodable line is reported and yields an empty line."""
    if encoding.startswith("utf-16"):
        wrapper = io.TextIOWrapper(reader, encoding=encoding, errors="replace", newline="")
        for number, text in enumerate(wrapper, 1):
            if "\ufffd" in text:
                ex.reject(number, "undecodable")
                yield number, "\n"
            else:
                yield number, text
        return
    first = True
    for number, raw in enumerate(reader, 1):
        try:
            text = raw.decode(encoding if first or encoding != "utf-8-sig" else "utf-8")
        except UnicodeDecodeError:
            ex.reject(number, "undecodable")
            text = "\n"
        first = False
        yield number, text.replace("\x00", " ")


def _parse_text(reader: io.BufferedReader, encoding: str, ex: _Extractor) -> None:
    for number, text in _decoded_lines(reader, encoding, ex):
        ex.lines = number
        ex.line(number, text)


def _parse_jsonl(reader: io.BufferedReader, encoding: str, ex: _Extractor, hints: Mapping[str, str]) -> None:
    def walk(value: Any, key: str | None, out: list[tuple[int, str, str | None]]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k), out)
        elif isinstance(value, list):
            for v in value:
                walk(v, key, out)
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            kind = None
            if key is not None:
                kind = hints.get(key) or _header_kind(key)
            out.append((0, str(value), kind))

    for number, text in _decoded_lines(reader, encoding, ex):
        ex.lines = number
        stripped = text.strip().lstrip("\ufeff")
        if not stripped:
            continue
        try:
            doc = json.loads(stripped)
        except ValueError:
            ex.line(number, text)  # not JSON: still read it as text (a dump with a stray line)
            continue
        cells: list[tuple[int, str, str | None]] = []
        walk(doc, None, cells)
        ex.row(number, cells)


def _hint_for(index: int, header: list[str] | None, hints: Mapping[str, str]) -> str | None:
    if str(index + 1) in hints:
        return hints[str(index + 1)]
    if header is not None and index < len(header):
        name = header[index].strip()
        if name in hints:
            return hints[name]
        return _header_kind(name)
    return None


def _looks_like_header(cells: list[str]) -> bool:
    return all(sum(ch.isdigit() for ch in c) < 5 and "@" not in c for c in cells) and any(c.strip() for c in cells)


def _parse_csv(reader: io.BufferedReader, encoding: str, ex: _Extractor, hints: Mapping[str, str],
               head_text: str) -> None:
    delimiter = _sniff_delimiter([ln for ln in head_text.splitlines()[:50] if ln.strip()]) or ","
    csv.field_size_limit(1 << 28)
    texts = (text for _number, text in _decoded_lines(reader, encoding, ex))
    rows = csv.reader(texts, delimiter=delimiter)
    header: list[str] | None = None
    first = True
    previous = 0
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            break
        except csv.Error:
            ex.reject(rows.line_num, "malformed")
            previous = rows.line_num
            continue
        line = previous + 1
        previous = rows.line_num
        ex.lines = rows.line_num
        if not cells or not any(c.strip() for c in cells):
            continue
        if first:
            first = False
            if _looks_like_header(cells):
                header = [c.lstrip("\ufeff") for c in cells]
                continue
        ex.row(line, ((i + 1, c, _hint_for(i, header, hints)) for i, c in enumerate(cells)))


def _parse_xlsx(data: bytes, filename: str, ex: _Extractor, hints: Mapping[str, str]) -> None:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # a zip that is not a workbook, a corrupt file: name the file, not its content
        raise InvalidInput(f"file {filename} is not a readable XLSX workbook", field="file") from None
    try:
        for sheet_no, sheet in enumerate(book.worksheets, 1):
            header: list[str] | None = None
            first = True
            for line, values in enumerate(sheet.iter_rows(values_only=True), 1):
                ex.lines += 1
                cells = ["" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
                         for v in values]
                if not any(c.strip() for c in cells):
                    continue
                if first:
                    first = False
                    if _looks_like_header(cells):
                        header = cells
                        continue
                ex.row(line, ((i + 1, c, _hint_for(i, header, hints)) for i, c in enumerate(cells)), sheet=sheet_no)
    finally:
        book.close()


def _check_hints(column_hints: Mapping[Any, str] | None) -> dict[str, str]:
    hints: dict[str, str] = {}
    for key, kind in (column_hints or {}).items():
        if kind not in KINDS:
            raise InvalidInput(f"column hints must name one of {', '.join(KINDS)}", field="column_hints")
        name = str(key).strip()
        if not name or len(name) > 200:
            raise InvalidInput("a column hint needs a column name or 1-based number", field="column_hints")
        hints[name] = kind
    return hints


def _safe_filename(filename: str | None) -> str:
    name = Path(str(filename or "upload")).name.replace("\x00", "").strip() or "upload"
    return name[:300]


# --- the service ------------------------------------------------------------------------------------------


class LeakIngest:
    """Two-phase ingest, expiry, reconciliation and the hourly merge of the token index."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        root = Path(platform.settings.data_dir) / "leaks"
        self.spool_dir = root / "spool"
        self.lock_dir = root / "locks"
        for d in (self.spool_dir, self.lock_dir):
            d.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.chmod(d, 0o700)
        self._scanner: Any = None
        self._merge_lock = threading.Lock()
        self._merging: threading.Thread | None = None

    # helpers -----------------------------------------------------------------------------------------------
    @property
    def index_dir(self) -> Path:
        return index_directory(self.platform)

    @property
    def scanner(self) -> Any:
        if self._scanner is None:
            from ..discovery.engine import Scanner

            self._scanner = Scanner.identifiers_only(entity_types=_SCAN_TYPES, min_score=0.5)
        return self._scanner

    @property
    def max_bytes(self) -> int:
        return int(getattr(self.platform.settings, "leaks_upload_max_bytes", 512 * 1024 * 1024))

    @property
    def ttl(self) -> timedelta:
        return timedelta(hours=float(getattr(self.platform.settings, "leaks_upload_ttl_hours", 24.0)))

    @contextlib.contextmanager
    def _locked(self, public_id: str) -> Iterator[None]:
        """One confirm/reconcile of an upload at a time, across processes."""
        fd = os.open(self.lock_dir / f"{public_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _incident(self, session: Session, incident_id: int) -> LeakIncident:
        try:
            from .incidents import incidents_for
        except ModuleNotFoundError:  # part A not installed yet: a tenant-scoped read of the same row
            row = session.scalars(select(LeakIncident).where(LeakIncident.id == incident_id)).first()
            if row is None:
                raise NotFound(f"incident {incident_id} not found", field="incident_id") from None
            return row
        return incidents_for(self.platform).get(session, incident_id)

    def _record_upload(self, session: Session, incident_id: int, *, upload_public_id: str, tokens_committed: int,
                       counts: dict[str, int], actor: str) -> None:
        try:
            from .incidents import incidents_for
        except ModuleNotFoundError:
            _record_upload_without_a(session, incident_id, upload_public_id=upload_public_id,
                                     tokens_committed=tokens_committed, counts=counts, actor=actor)
            return
        incidents_for(self.platform).record_upload(session, incident_id, upload_public_id=upload_public_id,
                                                   tokens_committed=tokens_committed, counts=counts, actor=actor)

    def _row(self, session: Session, public_id: str, *, lock: bool = False) -> LeakUpload:
        if not isinstance(public_id, str) or not _PUBLIC_ID.match(public_id):
            raise NotFound("upload not found", field="upload")
        query = select(LeakUpload).where(LeakUpload.public_id == public_id)
        if lock:
            query = query.with_for_update()
        row = session.scalars(query).first()
        if row is None:
            raise NotFound(f"upload {public_id} not found", field="upload")
        return row

    def _session(self, session_or_org: Session | int, *, write: bool) -> contextlib.AbstractContextManager[Session]:
        if isinstance(session_or_org, Session):
            return contextlib.nullcontext(session_or_org)
        if not isinstance(session_or_org, int) or isinstance(session_or_org, bool):
            raise InvalidInput("an organization id is required", field="organization_id")
        db = self.platform.db
        return db.transaction(session_or_org) if write else db.reader(session_or_org)

    # phase 1: upload ---------------------------------------------------------------------------------------
    def upload(self, session_or_org: Session | int, incident_id: int, source: BinaryIO | bytes | str | os.PathLike[str],
               filename: str | None = None, *, format: str | None = None, actor: str,
               column_hints: Mapping[Any, str] | None = None,
               progress: Callable[[int], None] | None = None) -> UploadView:
        """Parse a leak file, spool its normalized identifiers, store the review; status ``parsed``."""
        if format is not None and format not in UPLOAD_FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(UPLOAD_FORMATS)}", field="format")
        hints = _check_hints(column_hints)
        if isinstance(incident_id, bool) or not isinstance(incident_id, int):
            raise InvalidInput("incident_id must be an integer", field="incident_id")
        with self._session(session_or_org, write=False) as session:
            incident = self._incident(session, incident_id)
            if incident.status == "fabricated":
                raise Conflict(f"incident {incident_id} was found fabricated; it takes no uploads", field="incident_id")
        opened: BinaryIO | None = None
        if isinstance(source, (bytes, bytearray)):
            stream: BinaryIO = io.BytesIO(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            filename = filename or path.name
            if not path.is_file():
                raise InvalidInput(f"file {_safe_filename(filename)} cannot be read", field="file")
            opened = stream = open(path, "rb")  # noqa: SIM115 (closed below)
        else:
            stream = source
        name = _safe_filename(filename)
        public_id = f"lu-{secrets.token_hex(10)}"
        spool_path = self.spool_dir / public_id
        try:
            try:
                fmt, size, ex = self._parse(stream, name, format, hints, spool_path, progress)
            finally:
                if opened is not None:
                    opened.close()
            now = utcnow()
            counts = {k: len(v) for k, v in ex.seen.items()}
            with self._session(session_or_org, write=True) as session:
                incident = self._incident(session, incident_id)
                row = LeakUpload(public_id=public_id, incident_id=incident.id, filename=name, format=fmt,
                                 status="parsed", size_bytes=min(size, 2**31 - 1), lines=ex.lines, counts=counts,
                                 samples={k: v for k, v in ex.samples.items() if v}, rejected=ex.rejected,
                                 rejected_total=ex.rejected_total, spool_path=str(spool_path), created_at=now,
                                 created_by=actor, expires_at=now + self.ttl)
                if tenant_of(session) is None:
                    row.organization_id = incident.organization_id
                session.add(row)
                session.flush()
                audit.record(session, actor=actor, action="leaks.upload_parsed", object_type="leak_upload",
                             object_id=public_id, organization_id=incident.organization_id,
                             details={"incident_id": incident.id, "format": fmt, "size_bytes": size,
                                      "lines": ex.lines, "counts": counts, "rejected_total": ex.rejected_total})
                view = UploadView.of(row)
            return view
        except BaseException:
            _unlink(spool_path)
            raise

    def _parse(self, stream: BinaryIO, name: str, fmt: str | None, hints: Mapping[str, str], spool_path: Path,
               progress: Callable[[int], None] | None) -> tuple[str, int, _Extractor]:
        limited = _Limited(stream, self.max_bytes, name, progress)
        reader = io.BufferedReader(limited, buffer_size=_SNIFF_BYTES)
        head = reader.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
        fmt = fmt or _sniff_format(head, name)
        fd = os.open(spool_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "wb", buffering=1 << 20) as spool:
            ex = _Extractor(spool, self.scanner)
            if fmt == "xlsx":
                data = reader.read()
                _parse_xlsx(data, name, ex, hints)
                del data
            else:
                encoding = _sniff_encoding(head)
                if fmt == "jsonl":
                    _parse_jsonl(reader, encoding, ex, hints)
                elif fmt == "csv":
                    head_text = head.decode(_python_encoding(encoding), errors="replace")
                    _parse_csv(reader, encoding, ex, hints, head_text)
                else:
                    _parse_text(reader, encoding, ex)
            spool.flush()
            os.fsync(spool.fileno())
        _fsync_dir(self.spool_dir)
        return fmt, limited.count, ex

    # phase 2: confirm --------------------------------------------------------------------------------------
    def confirm(self, org_id: int, public_id: str, *, actor: str) -> UploadView:
        """Commit the upload's tokens as one segment (protocol in the module docstring); idempotent."""
        with self._locked(_checked_public_id(public_id)):
            with self._session(org_id, write=False) as session:
                row = self._row(session, public_id)
                view = UploadView.of(row)
            if view.status == "confirmed":
                if view.publish_pending:
                    self._finish(org_id, view)
                with self._session(org_id, write=False) as session:
                    return UploadView.of(self._row(session, public_id))
            self._check_confirmable(view)
            spool = Path(self._spool_of(org_id, public_id))
            tokens = self._tokens_from_spool(spool)
            job = _job(public_id)
            info = segments.stage_partition(self.index_dir, job, tokens, view.incident_id, partition=0)
            _crash_point("staged")
            with self._session(org_id, write=True) as session:
                row = self._row(session, public_id, lock=True)
                if row.status == "confirmed":  # confirmed meanwhile (cannot happen under the lock; be safe)
                    return UploadView.of(row)
                self._check_confirmable(UploadView.of(row))
                row.status = "confirmed"
                row.segment_name = info.name if info is not None else None
                row.tokens_committed = len(tokens)
                row.confirmed_at = utcnow()
                row.confirmed_by = actor
                counts = {k: int(v) for k, v in (row.counts or {}).items()}
                self._record_upload(session, row.incident_id, upload_public_id=public_id,
                                    tokens_committed=len(tokens), counts=counts, actor=actor)
                audit.record(session, actor=actor, action="leaks.upload_confirmed", object_type="leak_upload",
                             object_id=public_id, organization_id=row.organization_id,
                             details={"incident_id": row.incident_id, "tokens_committed": len(tokens),
                                      "segment": row.segment_name})
                view = UploadView.of(row)
            _crash_point("committed")
            self._finish(org_id, view, tokens=tokens)
            with self._session(org_id, write=False) as session:
                return UploadView.of(self._row(session, public_id))

    def _check_confirmable(self, view: UploadView) -> None:
        if view.status == "parsed" and utcnow() >= view.expires_at:
            raise Conflict(f"upload {view.public_id} expired on {view.expires_at:%Y-%m-%d %H:%M} UTC; upload the file "
                           "again", field="upload")
        if view.status != "parsed":
            raise Conflict(f"upload {view.public_id} is {view.status} and cannot be confirmed", field="upload")

    def _spool_of(self, org_id: int, public_id: str) -> str:
        with self._session(org_id, write=False) as session:
            row = self._row(session, public_id)
            if not row.spool_path or not Path(row.spool_path).exists():
                raise Conflict(f"upload {public_id} has no spooled identifiers left; upload the file again",
                               field="upload")
            return row.spool_path

    def _tokens_from_spool(self, spool: Path) -> np.ndarray:
        keys = leak_keys_for(self.platform)
        parts: list[np.ndarray] = []
        batch: dict[str, list[str]] = {k: [] for k in KINDS}

        def flush(kind: str) -> None:
            values = batch[kind]
            if values:
                parts.append(np.frombuffer(b"".join(keys.tokens(kind, values)), np.uint8).reshape(-1, 32))
                batch[kind] = []

        with open(spool, "rb") as fh:
            for raw in fh:
                kind, _, value = raw.decode().rstrip("\n").partition("\t")
                if kind not in batch or not value:
                    continue
                batch[kind].append(value)
                if len(batch[kind]) >= TOKEN_BATCH:
                    flush(kind)
        for kind in KINDS:
            flush(kind)
        if not parts:
            return np.zeros((0, 32), np.uint8)
        return np.ascontiguousarray(np.concatenate(parts))

    def _visible(self, tokens: np.ndarray, incident_id: int) -> bool:
        """Every token already answers this incident (the segment was published, perhaps merged since)."""
        if not len(tokens):
            return True
        index = leak_index_for(self.platform)
        index.refresh()
        found = index.lookup_many(tokens)
        hit = np.zeros(len(tokens), bool)
        hit[found.query[found.incidents == incident_id]] = True
        return bool(hit.all())

    def finish_bulk(self, org_id: int, public_id: str) -> None:
        """Publish a committed Spark bulk ingest (qorgau/leaks/spark_ingest.py) and notify subscribers."""
        with self._locked(_checked_public_id(public_id)):
            view = self.get(org_id, public_id)
            if view.publish_pending:
                self._finish(org_id, view)

    def _finish_job(self, org_id: int, view: UploadView) -> None:
        """Publish pending for a bulk ingest: every staged partition is published in one manifest replacement.
        Partitions renamed into the index but not listed (a crash inside ``publish_staged``) are moved back
        first. If one was lost (collected as garbage meanwhile) nothing is published and the upload fails."""
        index_dir = self.index_dir
        job = _job(view.public_id)
        staging = index_dir / "staging" / job
        prefix = f"seg-{job}-"
        live = segments.read_manifest(index_dir).names
        expected = int((view.segment_name or "0").split(" ", 1)[0] or 0)
        published: list[str] = []
        if not any(name.startswith(prefix) for name in live) and expected:
            staging.mkdir(parents=True, exist_ok=True)
            for entry in os.listdir(index_dir):
                if entry.startswith(prefix) and entry not in live:
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(index_dir / entry, staging / entry)
            staged = [e for e in os.listdir(staging) if e.startswith(prefix)]
            if staged and len(staged) < expected:
                shutil.rmtree(staging, ignore_errors=True)
                with self._session(org_id, write=True) as session:
                    row = self._row(session, view.public_id, lock=True)
                    row.status, row.spool_path = "failed", None
                    row.error = "staged segments were lost in a crash before publishing; run the bulk ingest again"
                    audit.record(session, actor="system:leaks-ingest", action="leaks.upload_failed",
                                 object_type="leak_upload", object_id=view.public_id,
                                 organization_id=row.organization_id, details={"incident_id": row.incident_id})
                return
            if staged:
                published = [i.name for i in segments.publish_staged(index_dir, job)]
        shutil.rmtree(staging, ignore_errors=True)
        with self._session(org_id, write=True) as session:
            row = self._row(session, view.public_id, lock=True)
            row.spool_path = None
            audit.record(session, actor="system:leaks-ingest", action="leaks.upload_published",
                         object_type="leak_upload", object_id=view.public_id, organization_id=row.organization_id,
                         details={"incident_id": row.incident_id, "segments": len(published)})
        with contextlib.suppress(Exception):
            leak_index_for(self.platform).refresh()
        for name in published:  # notify from the new segments' token columns, a slice at a time
            seg = segments.Segment(index_dir / name)
            try:
                for start in range(0, seg.n, 1 << 20):
                    self._notify(view.incident_id, np.array(seg.tokens[start:start + (1 << 20)]))
            finally:
                seg.close()

    def _finish(self, org_id: int, view: UploadView, *, tokens: np.ndarray | None = None) -> None:
        """Steps c–d of the protocol for a confirmed upload whose publish is pending (under its lock)."""
        if view.format == "spark":
            self._finish_job(org_id, view)
            return
        public_id = view.public_id
        index_dir = self.index_dir
        job = _job(public_id)
        staging = index_dir / "staging" / job
        with self._session(org_id, write=False) as session:
            spool_path = self._row(session, public_id).spool_path
        spool = Path(spool_path) if spool_path else None
        published = False
        if view.segment_name and spool is not None and spool.exists():
            if tokens is None:
                tokens = self._tokens_from_spool(spool)
            live = segments.read_manifest(index_dir).names
            staged = staging / view.segment_name
            # A staged file is never published (publish moves it out of staging): publish it. Without one, the
            # segment may be published already — perhaps merged since — so ask the index before re-staging.
            if staged.exists() or (view.segment_name not in live and not self._visible(tokens, view.incident_id)):
                if not staged.exists():
                    stray = index_dir / view.segment_name
                    staging.mkdir(parents=True, exist_ok=True)
                    try:
                        os.replace(stray, staged)  # renamed into the index, never listed: list it now
                    except FileNotFoundError:
                        segments.stage_partition(index_dir, job, tokens, view.incident_id, partition=0)
                _crash_point("before_publish")
                segments.publish_staged(index_dir, job)
                published = True
        shutil.rmtree(staging, ignore_errors=True)
        _crash_point("published")
        if spool is not None:
            _unlink(spool)
            _fsync_dir(self.spool_dir)
        with self._session(org_id, write=True) as session:
            row = self._row(session, public_id, lock=True)
            row.spool_path = None
            audit.record(session, actor="system:leaks-ingest", action="leaks.upload_published",
                         object_type="leak_upload", object_id=public_id, organization_id=row.organization_id,
                         details={"incident_id": row.incident_id, "segment": row.segment_name,
                                  "spool_deleted": True})
        with contextlib.suppress(Exception):
            leak_index_for(self.platform).refresh()
        if tokens is not None and len(tokens) and (published or view.segment_name):
            self._notify(view.incident_id, tokens)

    def _notify(self, incident_id: int, tokens: np.ndarray) -> int:
        try:
            from .citizens import leak_citizens_for
        except ModuleNotFoundError:  # part D not installed yet
            return 0
        try:
            return leak_citizens_for(self.platform).notify_new_tokens(incident_id, tokens)
        except Exception as exc:  # the segment is committed; notifications are retried by the next reconcile run
            log.warning("leak notifications for incident %s failed (%s)", incident_id, type(exc).__name__)
            return 0

    # the rest of the life cycle ------------------------------------------------------------------------------
    def discard(self, org_id: int, public_id: str, actor: str) -> UploadView:
        """Drop a parsed upload: spool deleted, status ``discarded``; idempotent; a confirmed one is a Conflict."""
        with self._locked(_checked_public_id(public_id)):
            with self._session(org_id, write=True) as session:
                row = self._row(session, public_id, lock=True)
                if row.status == "discarded":
                    return UploadView.of(row)
                if row.status != "parsed":
                    raise Conflict(f"upload {public_id} is {row.status} and cannot be discarded", field="upload")
                if row.spool_path:
                    _unlink(Path(row.spool_path))
                row.status = "discarded"
                row.spool_path = None
                audit.record(session, actor=actor, action="leaks.upload_discarded", object_type="leak_upload",
                             object_id=public_id, organization_id=row.organization_id,
                             details={"incident_id": row.incident_id, "spool_deleted": True})
                view = UploadView.of(row)
            shutil.rmtree(self.index_dir / "staging" / _job(public_id), ignore_errors=True)
            return view

    def get(self, org_id: int, public_id: str) -> UploadView:
        with self._session(org_id, write=False) as session:
            return UploadView.of(self._row(session, public_id))

    def list(self, org_id: int, incident_id: int) -> list[UploadView]:
        with self._session(org_id, write=False) as session:
            self._incident(session, incident_id)
            rows = session.scalars(select(LeakUpload).where(LeakUpload.incident_id == incident_id)
                                   .order_by(LeakUpload.created_at.desc(), LeakUpload.id.desc())).all()
            return [UploadView.of(r) for r in rows]

    def purge_expired(self, now: datetime | None = None) -> int:
        """Parsed uploads past their expiry → ``expired``, spool deleted (one audit entry each)."""
        now = now or utcnow()
        with self.platform.db.reader() as session:
            due = session.scalars(select(LeakUpload.public_id).where(LeakUpload.status == "parsed",
                                                                   LeakUpload.expires_at <= now)).all()
        purged = 0
        for public_id in due:
            with self._locked(public_id), self.platform.db.transaction() as session:
                row = self._row(session, public_id, lock=True)
                if row.status != "parsed" or row.expires_at > now:
                    continue
                if row.spool_path:
                    _unlink(Path(row.spool_path))
                row.status = "expired"
                row.spool_path = None
                audit.record(session, actor="system:leaks-ingest", action="leaks.upload_expired",
                             object_type="leak_upload", object_id=public_id, organization_id=row.organization_id,
                             details={"incident_id": row.incident_id, "spool_deleted": True})
                purged += 1
            shutil.rmtree(self.index_dir / "staging" / _job(public_id), ignore_errors=True)
        return purged

    def reconcile(self) -> int:
        """Finish confirmed uploads whose publish is pending; delete leftovers (staging of dead uploads, spools
        and locks without a live upload). Returns the number of uploads finished."""
        with self.platform.db.reader() as session:
            pending = session.execute(select(LeakUpload.public_id, LeakUpload.organization_id)
                                      .where(LeakUpload.status == "confirmed", LeakUpload.spool_path.is_not(None))
                                      ).all()
        finished = 0
        for public_id, org_id in pending:
            with self._locked(public_id):
                view = self.get(org_id, public_id)
                if view.publish_pending:
                    self._finish(org_id, view)
                    finished += 1
        self._collect_leftovers()
        return finished

    def _collect_leftovers(self) -> None:
        staging_root = self.index_dir / "staging"
        names: dict[str, str] = {}
        candidates: list[str] = []
        if staging_root.is_dir():
            candidates += [e[len("upload-"):] for e in os.listdir(staging_root) if e.startswith("upload-")]
        spools = [e for e in os.listdir(self.spool_dir) if _PUBLIC_ID.match(e)]
        locks = [e[:-5] for e in os.listdir(self.lock_dir) if e.endswith(".lock")]
        wanted = {p for p in candidates + spools + locks if _PUBLIC_ID.match(p)}
        if wanted:
            with self.platform.db.reader() as session:
                for public_id, status in session.execute(select(LeakUpload.public_id, LeakUpload.status)
                                                         .where(LeakUpload.public_id.in_(sorted(wanted)))):
                    names[public_id] = status
        old = time.time() - self.ttl.total_seconds()
        for public_id in candidates:
            status = names.get(public_id)
            path = staging_root / f"upload-{public_id}"
            if status in ("expired", "discarded", "failed") or (status is None and _mtime(path) < old):
                shutil.rmtree(path, ignore_errors=True)
        for public_id in spools:  # a spool whose upload row was never written (a crash while parsing)
            if public_id not in names and _mtime(self.spool_dir / public_id) < old:
                _unlink(self.spool_dir / public_id)
        for public_id in locks:
            if names.get(public_id) in ("confirmed", "expired", "discarded", "failed") and _mtime(
                    self.lock_dir / f"{public_id}.lock") < old:
                _unlink(self.lock_dir / f"{public_id}.lock")

    def merge_in_background(self) -> threading.Thread:
        """Merge rounds until the policy has nothing to merge, in one background thread at a time."""
        with self._merge_lock:
            if self._merging is not None and self._merging.is_alive():
                return self._merging

            def loop() -> None:
                try:
                    while self.merge_once() is not None:
                        pass
                except Exception as exc:  # the next hourly run retries; no data in the message
                    log.warning("leak index merge failed (%s)", type(exc).__name__)

            self._merging = threading.Thread(target=loop, name="leaks-ingest-merge", daemon=True)
            self._merging.start()
            return self._merging

    def merge_once(self) -> segments.SegmentInfo | None:
        """One round of the background merge policy over the token index (the hourly job)."""
        info = segments.Merger(self.index_dir).run_once()
        if info is not None:
            with contextlib.suppress(Exception):
                leak_index_for(self.platform).refresh()
        return info


def _record_upload_without_a(session: Session, incident_id: int, *, upload_public_id: str, tokens_committed: int,
                             counts: dict[str, int], actor: str) -> None:
    """What A's ``incidents_for(platform).record_upload`` does, used only while ``qorgau.leaks.incidents`` is not
    installed: the incident's committed count, an ``upload_confirmed`` event (counts only), an audit entry."""
    incident = session.scalars(select(LeakIncident).where(LeakIncident.id == incident_id)).first()
    if incident is None:
        raise NotFound(f"incident {incident_id} not found", field="incident_id")
    if incident.status == "fabricated":
        raise Conflict(f"incident {incident_id} was found fabricated; it takes no uploads", field="incident_id")
    incident.identifiers_committed = (incident.identifiers_committed or 0) + tokens_committed
    incident.updated_at = utcnow()
    session.add(LeakIncidentEvent(organization_id=incident.organization_id, incident_id=incident.id,
                                  kind="upload_confirmed", actor=actor,
                                  details={"upload": upload_public_id, "tokens_committed": tokens_committed,
                                           "counts": dict(counts)}))
    session.flush()
    audit.record(session, actor=actor, action="leaks.incident_upload_recorded", object_type="leak_incident",
                 object_id=str(incident.id), organization_id=incident.organization_id,
                 details={"upload": upload_public_id, "tokens_committed": tokens_committed})


def _checked_public_id(public_id: str) -> str:
    if not isinstance(public_id, str) or not _PUBLIC_ID.match(public_id):
        raise NotFound("upload not found", field="upload")
    return public_id


def _job(public_id: str) -> str:
    return f"upload-{public_id}"


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crash_point(name: str) -> None:
    """Test hook: ``QORGAU_LEAKS_CRASH_AT=<name>`` kills this process right there (the crash test)."""
    if os.environ.get("QORGAU_LEAKS_CRASH_AT") == name:
        os.kill(os.getpid(), 9)


def ingest_for(platform: Platform) -> LeakIngest:
    return shared(platform, "_leak_ingest", _make)


def _make(platform: Platform) -> LeakIngest:
    service = LeakIngest(platform)
    try:
        service.reconcile()  # finish what a crashed process left half-done (protocol above)
    except Exception as exc:  # never block startup on it; the hourly job retries
        log.warning("leak ingest reconcile at start failed (%s)", type(exc).__name__)
    return service


def run_periodic(platform: Platform) -> None:
    """The hourly job: finish pending publishes, expire unconfirmed uploads, merge the index (in a thread of its
    own, so a long merge never holds up the dispatcher that runs this job)."""
    service = ingest_for(platform)
    service.reconcile()
    service.purge_expired()
    service.merge_in_background()
