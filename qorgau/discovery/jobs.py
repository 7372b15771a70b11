"""Background scan jobs: scan server paths, database URLs and uploaded files into the data map.

A job is a row of ``scan_jobs`` (:class:`~qorgau.discovery.models.ScanJob`). :func:`submit` and
:func:`submit_uploads` validate the inputs, keep their display form in ``sources`` (database URLs
without passwords) and the real ones sealed with the key ring (AES-GCM under a per-organization data
key, the job id as associated data), and audit ``discovery.scan_job.submit``.

A :class:`ScanWorker` runs them. Several may run at once, in threads of ``qorgau serve`` or as
``qorgau jobs worker`` processes, on SQLite or PostgreSQL:

* **claiming** is one write transaction: on SQLite it begins with ``BEGIN IMMEDIATE`` (writers queue on
  the lock, so two workers never read the same queued row as free); on PostgreSQL the oldest queued row
  is selected ``FOR UPDATE SKIP LOCKED``. The claim bumps ``attempts`` and names the worker: the pair
  (worker, attempt) is the job's *lease*, and every later write of the worker is conditional on it, so a
  worker presumed dead that wakes up again cannot write over the job's next attempt.
* **running**: :func:`.scanning.scan_paths` streams the inputs; a monitor thread writes progress to the
  row at most once per ``progress_seconds``, a heartbeat at least every ``scan_job_heartbeat_seconds``,
  and reads ``cancel_requested``; the scan checks it between chunks. Each source is recorded into the
  data map in its own transaction as soon as it is finished (with its audit entry and the job's counters),
  so nothing recorded is lost whatever happens next.
* **ending**: ``succeeded`` (every source read), ``failed`` (some source could not be read, or the job
  could not run) or ``cancelled``; an audit entry; the sealed inputs are wiped (a database password is
  kept no longer than needed) and uploaded files deleted.
* **recovery**: a running job whose heartbeat is older than six heartbeats is re-queued (its sources
  already recorded are not scanned again) up to ``MAX_ATTEMPTS`` times, then failed with the reason.
  On start-up a worker also deletes uploaded files no queued or running job refers to.

Server-side paths must lie under a configured scan root (``settings.scan_roots``; ``{bin}`` in a root is
the organization's BIN, which gives each tenant a directory of its own) — checked when the job is
submitted and again when it runs, after resolving symbolic links, and file by file while walking a
directory (a link leading outside the roots is refused, not followed). SQLite database files count as
paths. Errors name the input (``sources[2]``), never echo it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import stat
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..core import audit, auth
from ..core.db import tenant_of, utcnow
from ..core.errors import Conflict, InvalidInput, NotFound, QorgauError
from ..core.platform import Platform
from ..core.settings import normalize_database_url
from . import datamap
from .models import JOB_STATUSES, DataSource, ScanJob
from .scanning import ProgressUpdate, ScannerSpec, SourceResult, TextScanner, scan_paths
from .sources import DEFAULT_SAMPLE_ROWS, is_database_url
from .types import EntityType

log = logging.getLogger("qorgau.discovery.jobs")

MAX_SOURCES = 100
MAX_SOURCE_CHARS = 2000
MAX_UPLOAD_FILES = 50
MAX_ATTEMPTS = 3
STALE_AFTER_HEARTBEATS = 6
UPLOAD_DIR = "uploads"
UPLOAD_GRACE_SECONDS = 600  # an upload being written has this long to get its job row committed
ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled")
WORKER_ACTOR = "system:scan-worker"
SEAL_PURPOSE = "discovery-scan-job-inputs"
KNOWN_TYPES = frozenset(t.value for t in EntityType)
MAX_JOB_WORKERS = max(1, min(16, os.cpu_count() or 1))
COPY_BYTES = 1024 * 1024


class SourceRejected(InvalidInput):
    """An input a job may not scan. ``reason`` is a stable key (the web UI translates it); ``index`` the
    input's position. The message never repeats the input (a URL may hold a password)."""

    def __init__(self, message: str, *, reason: str, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field or (f"sources[{index}]" if index is not None else "sources"))
        self.reason = reason
        self.index = index


class UploadTooLarge(QorgauError):
    code = "payload_too_large"
    status = 413


# --- options ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOptions:
    """How to scan: like ``qorgau scan``'s options (no allow/deny/custom files: those name server paths)."""

    types: tuple[str, ...] | None = None
    min_score: float = 0.5
    sample_rows: int = DEFAULT_SAMPLE_ROWS
    text_field: str | None = None
    id_field: str | None = None
    workers: int = 1
    identifiers_only: bool = False

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> JobOptions:
        """Validated options; unknown keys and bad values are refused naming ``options.<key>``."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - {"types", "min_score", "sample_rows", "text_field", "id_field", "workers",
                                     "identifiers_only"})
        if unknown:
            raise InvalidInput("unknown option", field=f"options.{unknown[0]}")
        types = raw.get("types")
        if types is not None:
            if isinstance(types, str):
                types = [t for t in types.split(",")]
            if not isinstance(types, (list, tuple)) or not all(isinstance(t, str) for t in types):
                raise InvalidInput("types must be a list of entity type names", field="options.types")
            names = sorted({t.strip().upper() for t in types if t.strip()})
            bad = [n for n in names if n not in KNOWN_TYPES]
            if bad:
                raise InvalidInput(f"unknown entity type(s); known: {', '.join(sorted(KNOWN_TYPES))}",
                                   field="options.types")
            types = tuple(names) or None
        min_score = _number(raw.get("min_score", 0.5), "min_score", 0.0, 1.0, float)
        sample_rows = _number(raw.get("sample_rows", DEFAULT_SAMPLE_ROWS), "sample_rows", 1, 1_000_000, int)
        workers = _number(raw.get("workers", 1), "workers", 1, MAX_JOB_WORKERS, int)
        identifiers_only = raw.get("identifiers_only", False)
        if not isinstance(identifiers_only, bool):
            raise InvalidInput("identifiers_only must be true or false", field="options.identifiers_only")
        text_field = _name(raw.get("text_field"), "text_field")
        id_field = _name(raw.get("id_field"), "id_field")
        if id_field is not None and text_field is None:
            raise InvalidInput("id_field is used with text_field", field="options.id_field")
        return cls(types, float(min_score), int(sample_rows), text_field, id_field, int(workers), identifiers_only)

    def to_dict(self) -> dict[str, Any]:
        return {"types": list(self.types) if self.types else None, "min_score": self.min_score,
                "sample_rows": self.sample_rows, "text_field": self.text_field, "id_field": self.id_field,
                "workers": self.workers, "identifiers_only": self.identifiers_only}

    def scanner_spec(self) -> ScannerSpec:
        return ScannerSpec(identifiers_only=self.identifiers_only, entity_types=self.types, min_score=self.min_score)


def _number(value: Any, name: str, low: float, high: float, kind: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise InvalidInput(f"{name} must be a number", field=f"options.{name}")
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}", field=f"options.{name}")
    return value


def _name(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200 or not value.strip():
        raise InvalidInput(f"{name} must be a field name (1–200 characters)", field=f"options.{name}")
    return value.strip()


# --- inputs -------------------------------------------------------------------------------------------


def scan_roots(settings: Any, organization_bin: str) -> list[Path]:
    """The directories this organization's server-side scans may read (``{bin}`` filled in), resolved."""
    roots = []
    for root in settings.scan_roots:
        text = str(root).replace("{bin}", organization_bin)
        if text.strip() and os.path.isabs(text):
            roots.append(Path(text).resolve())
    return roots


def under_roots(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _check_path(raw: str, roots: Sequence[Path], index: int) -> Path:
    path = Path(raw)
    if not path.is_absolute():
        raise SourceRejected("a server path must be absolute", reason="not_absolute", index=index)
    if not roots:
        raise SourceRejected("scans of server paths are disabled: no scan roots are configured "
                             "(QORGAU_SCAN_ROOTS); upload the files instead", reason="no_roots", index=index)
    try:
        real = path.resolve()
    except (OSError, RuntimeError, ValueError):
        raise SourceRejected("the path cannot be resolved", reason="not_found", index=index) from None
    # Outside the roots first: whether a file exists elsewhere on the server is none of the caller's business.
    if not under_roots(real, roots):
        raise SourceRejected("the path is outside the configured scan roots", reason="outside_roots", index=index)
    if not real.exists():
        raise SourceRejected("no such file or directory under the scan roots", reason="not_found", index=index)
    return real


def check_source(spec: Any, index: int, roots: Sequence[Path]) -> tuple[dict[str, str], str]:
    """One input of a job: ``({"path"|"url": real}, display form)``, or :class:`SourceRejected`."""
    if not isinstance(spec, str) or not spec.strip():
        raise SourceRejected("an input must be a non-empty string", reason="empty", index=index)
    spec = spec.strip()
    if len(spec) > MAX_SOURCE_CHARS or "\x00" in spec or any(ch in spec for ch in "\r\n"):
        raise SourceRejected(f"an input must be one line of at most {MAX_SOURCE_CHARS} characters",
                             reason="too_long", index=index)
    if spec == "-":
        raise SourceRejected("a background job cannot read stdin", reason="stdin", index=index)
    if spec.startswith(datamap.UPLOAD_PREFIX):
        raise SourceRejected("uploaded files are sent to the upload endpoint", reason="upload", index=index)
    if is_database_url(spec):
        from sqlalchemy.engine import make_url

        try:
            url = make_url(spec)
            make_url(normalize_database_url(spec)).get_dialect().import_dbapi()  # the driver is installed
        except Exception:  # noqa: BLE001 - the parser's message may quote the URL and its password
            raise SourceRejected("not a database URL this server can open (scheme+driver://user@host/db, "
                                 "with its driver installed)", reason="bad_url", index=index) from None
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if not database or database == ":memory:" or database.startswith("file:"):
                raise SourceRejected("a SQLite URL must name a database file", reason="bad_url", index=index)
            real = _check_path(database, roots, index)
            if not real.is_file():
                raise SourceRejected("a SQLite URL must name a database file", reason="bad_url", index=index)
            spec = url.set(database=str(real)).render_as_string(hide_password=False)
        elif not url.host:
            raise SourceRejected("a database URL must name its host", reason="bad_url", index=index)
        return {"url": spec}, datamap.locator_for(spec)
    if "://" in spec:
        raise SourceRejected("not a path or a supported database URL", reason="bad_url", index=index)
    real = _check_path(spec, roots, index)
    return {"path": str(real)}, str(real)


def _organization_bin(session: Session) -> tuple[int, str]:
    organization_id = tenant_of(session)
    if organization_id is None:
        raise ValueError("scan jobs belong to an organization: use a session bound to one")
    return organization_id, auth.get_organization(session, organization_id).bin


# --- submitting -------------------------------------------------------------------------------------


def submit(platform: Platform, session: Session, *, actor: str, sources: Sequence[Any],
           options: Mapping[str, Any] | JobOptions | None = None) -> ScanJob:
    """Queue a scan of server paths (under the scan roots) and database URLs; audited."""
    organization_id, bin_ = _organization_bin(session)
    if not isinstance(sources, (list, tuple)) or not sources:
        raise SourceRejected("give at least one input", reason="empty")
    if len(sources) > MAX_SOURCES:
        raise SourceRejected(f"at most {MAX_SOURCES} inputs per job", reason="too_many")
    parsed = options if isinstance(options, JobOptions) else JobOptions.parse(options)
    roots = scan_roots(platform.settings, bin_)
    items, shown = [], []
    for index, spec in enumerate(sources):
        item, display = check_source(spec, index, roots)
        items.append(item)
        shown.append(display)
    return _create(platform, session, organization_id, actor=actor, items=items, shown=shown, options=parsed,
                   details={"sources": len(items), "databases": sum("url" in i for i in items)})


@dataclass
class StagedUploads:
    """Uploaded files written under the data dir (0600), waiting for their job row."""

    directory: Path
    items: list[dict[str, str]] = field(default_factory=list)
    total_bytes: int = 0

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def uploads_root(platform: Platform) -> Path:
    return Path(platform.settings.data_dir) / UPLOAD_DIR


def clean_upload_name(name: str | None, position: int) -> str:
    """The file's own name, safe to show: no directories, no control characters, at most 200 characters."""
    text = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return text[:200] or f"upload-{position + 1}"


@contextlib.contextmanager
def staged_uploads(platform: Platform, files: Iterable[tuple[str | None, IO[bytes]]],
                   max_bytes: int | None = None) -> Iterator[StagedUploads]:
    """Write uploaded files to ``DATA_DIR/uploads/<random>/`` (dir 0700, files 0600); the directory is
    deleted again if the block raises (the job row was not created). The total size is capped."""
    limit = platform.settings.scan_upload_max_bytes if max_bytes is None else max_bytes
    root = uploads_root(platform)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    directory = root / secrets.token_hex(16)
    directory.mkdir(mode=0o700)
    staged = StagedUploads(directory)
    try:
        names: set[str] = set()
        for position, (name, stream) in enumerate(files):
            if position >= MAX_UPLOAD_FILES:
                raise InvalidInput(f"at most {MAX_UPLOAD_FILES} files per upload", field="files")
            shown = _unique(clean_upload_name(name, position), names)
            suffix = Path(shown).suffix.lower()
            suffix = suffix if 1 < len(suffix) <= 10 and suffix[1:].isalnum() and suffix.isascii() else ""
            target = directory / f"{position:04d}{suffix}"
            staged.total_bytes += _copy(stream, target, limit - staged.total_bytes)
            staged.items.append({"upload": str(target), "name": shown})
        if not staged.items:
            raise InvalidInput("no file was uploaded", field="files")
        yield staged
    except BaseException:
        staged.discard()
        raise


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    stem, suffix = os.path.splitext(name)
    while candidate in taken:
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    taken.add(candidate)
    return candidate


def _copy(stream: IO[bytes], target: Path, budget: int) -> int:
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while True:
            block = stream.read(COPY_BYTES)
            if not block:
                break
            written += len(block)
            if written > budget:
                raise UploadTooLarge("the upload exceeds the size limit for scans (scan_upload_max_bytes)",
                                     field="files")
            out.write(block)
    return written


def submit_uploads(platform: Platform, session: Session, *, actor: str, staged: StagedUploads,
                   options: Mapping[str, Any] | JobOptions | None = None) -> ScanJob:
    """Queue a scan of staged uploads; their data-map locator is ``upload:<original name>``; audited."""
    organization_id, _ = _organization_bin(session)
    parsed = options if isinstance(options, JobOptions) else JobOptions.parse(options)
    shown = [datamap.UPLOAD_PREFIX + item["name"] for item in staged.items]
    return _create(platform, session, organization_id, actor=actor, items=list(staged.items), shown=shown,
                   options=parsed, details={"uploads": len(staged.items), "bytes": staged.total_bytes})


def _create(platform: Platform, session: Session, organization_id: int, *, actor: str, items: list[dict[str, str]],
            shown: list[str], options: JobOptions, details: dict[str, Any]) -> ScanJob:
    job = ScanJob(organization_id=organization_id, status="queued", requested_by=actor[:100], sources=shown,
                  sealed_sources=b"", options=options.to_dict(), attempts=0, cancel_requested=False,
                  bytes_scanned=0, rows_scanned=0, sources_done=0, sources_failed=0, findings=0,
                  created_at=utcnow())
    session.add(job)
    session.flush()
    job.sealed_sources = _seal(platform, session, job, items)
    audit.record(session, actor=actor, action="discovery.scan_job.submit", object_type="scan_job",
                 object_id=str(job.id), organization_id=organization_id,
                 details={**details, "options": {k: v for k, v in options.to_dict().items() if v is not None}})
    session.flush()
    return job


def _seal_key(organization_id: int) -> str:
    return f"scanjobs-org{organization_id}"


def _seal(platform: Platform, session: Session, job: ScanJob, items: list[dict[str, str]]) -> bytes:
    key_id = _seal_key(job.organization_id)
    platform.keyring.get_or_create(session, key_id, SEAL_PURPOSE)
    return platform.keyring.encrypt(session, key_id, json.dumps(items).encode(), aad=f"scan_job:{job.id}".encode())


def unseal(platform: Platform, session: Session, job: ScanJob) -> list[dict[str, str]]:
    """The job's real inputs (only workers and clean-up need them). Empty once the job has ended."""
    if not job.sealed_sources:
        return []
    return json.loads(platform.keyring.decrypt(session, job.sealed_sources, aad=f"scan_job:{job.id}".encode()))


# --- reading and cancelling ----------------------------------------------------------------------


def list_jobs(session: Session, *, status: str | None = None, limit: int = 50,
              offset: int = 0) -> tuple[list[ScanJob], int]:
    """The organization's jobs, newest first, and how many there are."""
    if status is not None and status not in JOB_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(JOB_STATUSES)}", field="status")
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500", field="limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", field="offset")
    query = select(ScanJob)
    if status is not None:
        query = query.where(ScanJob.status == status)
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(ScanJob.id).subquery())) or 0
    rows = list(session.scalars(query.order_by(ScanJob.created_at.desc(), ScanJob.id.desc()).limit(limit).offset(offset)))
    return rows, int(total)


def get_job(session: Session, job_id: int) -> ScanJob:
    job = session.scalar(select(ScanJob).where(ScanJob.id == job_id))
    if job is None:
        raise NotFound("scan job not found", field="job_id")
    return job


def has_active_jobs(session: Session) -> bool:
    return session.scalar(select(ScanJob.id).where(ScanJob.status.in_(ACTIVE)).limit(1)) is not None


def cancel(platform: Platform, session: Session, job_id: int, *, actor: str) -> ScanJob:
    """Cancel a job: a queued one ends at once (its uploads deleted after commit); a running one stops
    between two chunks, keeping what it already recorded. An ended job cannot be cancelled."""
    job = get_job(session, job_id)
    if job.status in FINAL:
        raise Conflict(f"the job has already ended ({job.status})", field="job_id")
    was = job.status
    if job.status == "queued":
        _delete_uploads_later(session, unseal(platform, session, job))
        job.status, job.finished_at, job.sealed_sources = "cancelled", utcnow(), b""
        job.error = "cancelled before it started"
    job.cancel_requested = True
    audit.record(session, actor=actor, action="discovery.scan_job.cancel", object_type="scan_job",
                 object_id=str(job.id), organization_id=job.organization_id, details={"was": was})
    session.flush()
    return job


def _delete_uploads_later(session: Session, items: list[dict[str, str]]) -> None:
    """Delete a job's uploaded files once the transaction that ended it has committed."""
    directories = {str(Path(i["upload"]).parent) for i in items if "upload" in i}
    if not directories:
        return
    from sqlalchemy import event

    @event.listens_for(session, "after_commit", once=True)
    def _delete(_session: Session) -> None:
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)


def job_dict(job: ScanJob) -> dict[str, Any]:
    """A job as the API and the CLI show it: never its sealed inputs, never the worker's host name."""
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {"id": job.id, "status": job.status, "requested_by": job.requested_by, "sources": list(job.sources),
            "options": dict(job.options or {}), "created_at": iso(job.created_at), "started_at": iso(job.started_at),
            "finished_at": iso(job.finished_at), "heartbeat_at": iso(job.heartbeat_at), "attempts": job.attempts,
            "cancel_requested": job.cancel_requested, "bytes_scanned": job.bytes_scanned,
            "rows_scanned": job.rows_scanned, "sources_done": job.sources_done,
            "sources_failed": job.sources_failed, "findings": job.findings, "error": job.error}


# --- the worker ---------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised from the progress callback to stop a scan between two chunks."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why  # "cancel" | "shutdown" | "lease"


@dataclass
class _Lease:
    job_id: int
    organization_id: int
    worker: str
    attempt: int

    def where(self) -> tuple[Any, ...]:
        return (ScanJob.id == self.job_id, ScanJob.worker == self.worker, ScanJob.attempts == self.attempt,
                ScanJob.status == "running")


@dataclass
class _Claim:
    lease: _Lease
    options: dict[str, Any]
    recorded: set[str]
    bytes_base: int
    rows_base: int


_scanners: dict[ScannerSpec, TextScanner] = {}
_scanners_lock = threading.Lock()
_wake = threading.Event()


def wake_workers() -> None:
    """Tell the workers of this process that a job was queued (they also poll)."""
    _wake.set()


def shared_scanner(spec: ScannerSpec) -> TextScanner:
    """One scanner per recipe and process: building one loads lexicons and the NER model."""
    with _scanners_lock:
        scanner = _scanners.get(spec)
        if scanner is None:
            scanner = _scanners[spec] = spec()
        return scanner


class ScanWorker:
    """Claims queued jobs and runs them, one at a time. Thread-safe to run several (each its own object)."""

    def __init__(self, platform: Platform, *, name: str | None = None, poll_seconds: float = 2.0,
                 progress_seconds: float = 1.0, heartbeat_seconds: float | None = None,
                 stop: threading.Event | None = None) -> None:
        self.platform = platform
        self.name = (name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}")[:100]
        self.poll_seconds = poll_seconds
        self.progress_seconds = progress_seconds
        self.heartbeat_seconds = heartbeat_seconds or platform.settings.scan_job_heartbeat_seconds
        self.stop = stop or threading.Event()

    def __repr__(self) -> str:
        return f"ScanWorker(name={self.name!r})"

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_seconds * STALE_AFTER_HEARTBEATS)

    # -- the loop --

    def start_up(self) -> None:
        """Recover what a crash left behind: stale jobs, and uploads no job refers to."""
        self.requeue_stale()
        clean_uploads(self.platform)

    def run_forever(self) -> None:
        """Until ``stop`` is set: recover stale jobs, claim and run jobs, otherwise wait for a wake-up."""
        self.start_up()
        while not self.stop.is_set():
            try:
                self.requeue_stale()
                ran = self.run_once()
            except Exception as exc:  # noqa: BLE001 - a database outage must not end the worker
                log.warning("scan worker %s: %s; retrying", self.name, type(exc).__name__)
                ran = None
            if ran is None:
                _wake.wait(self.poll_seconds)
                _wake.clear()

    def run_once(self) -> int | None:
        """Claim one queued job and run it to its end; its id, or ``None`` when nothing was queued."""
        claim = self.claim()
        if claim is None:
            return None
        self.run(claim)
        return claim.lease.job_id

    # -- claiming and recovery --

    def claim(self) -> _Claim | None:
        db = self.platform.db
        with db.reader() as session:  # most polls find nothing: don't take the write lock for that
            if session.scalar(select(ScanJob.id).where(ScanJob.status == "queued").limit(1)) is None:
                return None
        with db.transaction() as session:
            job = session.scalar(select(ScanJob).where(ScanJob.status == "queued")
                                 .order_by(ScanJob.created_at, ScanJob.id).limit(1)
                                 .with_for_update(skip_locked=True))
            if job is None:
                return None
            now = utcnow()
            job.status, job.worker, job.attempts = "running", self.name, job.attempts + 1
            job.started_at = job.started_at or now
            job.heartbeat_at, job.error = now, None
            # Sources an earlier attempt already recorded stay recorded and are not scanned again.
            done = session.execute(select(DataSource.locator, DataSource.status, DataSource.findings,
                                          DataSource.bytes_scanned, DataSource.rows_scanned)
                                   .where(DataSource.last_job_id == job.id)).all()
            job.sources_done = len(done)
            job.sources_failed = sum(1 for d in done if d.status in ("failed", "partial"))
            job.findings = sum(d.findings for d in done)
            job.bytes_scanned = sum(d.bytes_scanned for d in done)
            job.rows_scanned = sum(d.rows_scanned for d in done)
            audit.record(session, actor=WORKER_ACTOR, action="discovery.scan_job.start", object_type="scan_job",
                         object_id=str(job.id), organization_id=job.organization_id,
                         details={"attempt": job.attempts, "resumed_sources": len(done)})
            lease = _Lease(job.id, job.organization_id, self.name, job.attempts)
            return _Claim(lease, dict(job.options or {}), {d.locator for d in done}, job.bytes_scanned,
                          job.rows_scanned)

    def requeue_stale(self) -> list[int]:
        """Re-queue running jobs whose worker stopped responding (or fail them after ``MAX_ATTEMPTS``)."""
        cutoff = utcnow() - self.stale_after
        db = self.platform.db
        with db.reader() as session:
            if session.scalar(select(ScanJob.id).where(ScanJob.status == "running", ScanJob.heartbeat_at < cutoff)
                              .limit(1)) is None:
                return []
        touched = []
        with db.transaction() as session:
            stale = session.scalars(select(ScanJob).where(ScanJob.status == "running", ScanJob.heartbeat_at < cutoff)
                                    .with_for_update(skip_locked=True)).all()
            for job in stale:
                if job.cancel_requested or job.attempts >= MAX_ATTEMPTS:
                    _delete_uploads_later(session, unseal(self.platform, session, job))
                    cancelled = job.cancel_requested
                    job.status = "cancelled" if cancelled else "failed"
                    job.error = ("cancelled; its worker had stopped responding" if cancelled else
                                 f"its worker stopped responding {job.attempts} times; giving up")
                    job.finished_at, job.sealed_sources = utcnow(), b""
                    action = "discovery.scan_job.finish"
                else:
                    job.status, job.error = "queued", "re-queued: its worker stopped responding"
                    action = "discovery.scan_job.requeue"
                audit.record(session, actor=WORKER_ACTOR, action=action, object_type="scan_job",
                             object_id=str(job.id), organization_id=job.organization_id,
                             details={"status": job.status, "attempts": job.attempts, "stale_worker": True})
                job.worker, job.heartbeat_at = None, None
                touched.append(job.id)
        if touched:
            log.warning("re-queued or failed %d stale scan job(s)", len(touched))
        return touched

    # -- running --

    def run(self, claim: _Claim) -> str | None:
        """Run a claimed job to its end; the final status (``None`` if the lease was lost)."""
        lease = claim.lease
        db = self.platform.db
        monitor = _Monitor(self, lease, claim.bytes_base, claim.rows_base)
        failures: list[str] = []
        items: list[dict[str, str]] = []
        outcome = "done"
        try:
            with db.reader() as session:
                job = session.get(ScanJob, lease.job_id)
                assert job is not None
                items = unseal(self.platform, session, job)
            options = JobOptions.parse(claim.options)
            with db.reader() as session:
                bin_ = auth.get_organization(session, lease.organization_id).bin
            roots = scan_roots(self.platform.settings, bin_)
            locators: dict[str, str] = {}
            inputs = _expand(items, roots, claim.recorded, locators, failures, monitor)
            spec = options.scanner_spec()
            factory: Any = spec if options.workers > 1 else (lambda: shared_scanner(spec))
            collector = datamap.DataMapCollector()
            monitor.start()
            for result in scan_paths(inputs, factory, workers=options.workers, sample_rows=options.sample_rows,
                                     text_field=options.text_field, id_field=options.id_field, types=options.types,
                                     min_score=options.min_score, on_place=collector, on_progress=monitor.progress):
                self._record(lease, result, collector.take(result), locators.get(result.source))
                monitor.check()
        except _Stop as stop:
            outcome = stop.why
        except Exception as exc:  # noqa: BLE001 - the type only: a message may carry a URL or a value
            log.error("scan job %s failed: %s", lease.job_id, type(exc).__name__)
            failures.append(f"the scan stopped with an internal error ({type(exc).__name__})")
            outcome = "error"
        finally:
            monitor.finish()
        if outcome == "lease":
            log.warning("scan job %s: lease lost (the job was re-queued); stopping", lease.job_id)
            return None
        if outcome == "shutdown":
            self._release(lease, monitor)
            return "queued"
        return self._finish(lease, monitor, items, failures, cancelled=outcome == "cancel")

    def _record(self, lease: _Lease, result: SourceResult, tally: datamap.SourceTally, locator: str | None) -> None:
        status = datamap.source_status(result)
        failed = status in ("failed", "partial")
        with self.platform.db.transaction(lease.organization_id) as session:
            claimed = session.execute(update(ScanJob).where(*lease.where()).values(
                sources_done=ScanJob.sources_done + 1, sources_failed=ScanJob.sources_failed + int(failed),
                findings=ScanJob.findings + result.total, heartbeat_at=utcnow())).rowcount
            if not claimed:
                raise _Stop("lease")
            datamap.record_result(session, result, actor=WORKER_ACTOR, job_id=lease.job_id, tally=tally,
                                  locator=locator)

    def _release(self, lease: _Lease, monitor: _Monitor) -> None:
        """Shutting down: give the job back to the queue (this attempt does not count)."""
        with self.platform.db.transaction(lease.organization_id) as session:
            released = session.execute(update(ScanJob).where(*lease.where()).values(
                status="queued", worker=None, heartbeat_at=None, attempts=ScanJob.attempts - 1,
                bytes_scanned=monitor.bytes_total, rows_scanned=monitor.rows_total)).rowcount
            if released:
                audit.record(session, actor=WORKER_ACTOR, action="discovery.scan_job.release", object_type="scan_job",
                             object_id=str(lease.job_id), organization_id=lease.organization_id,
                             details={"reason": "worker shutting down"})

    def _finish(self, lease: _Lease, monitor: _Monitor, items: list[dict[str, str]], failures: list[str], *,
                cancelled: bool) -> str | None:
        with self.platform.db.transaction(lease.organization_id) as session:
            job = session.scalar(select(ScanJob).where(*lease.where()))
            if job is None:
                return None
            if cancelled:
                status = "cancelled"
                job.error = f"cancelled on request after {job.sources_done} source(s)"
            elif failures or job.sources_failed:
                status = "failed"
                parts = list(failures)
                if job.sources_failed:
                    parts.insert(0, f"{job.sources_failed} source(s) could not be read fully; see the data map")
                job.error = "; ".join(parts)[:2000]
            else:
                status = "succeeded"
            job.status, job.finished_at, job.heartbeat_at = status, utcnow(), utcnow()
            job.bytes_scanned, job.rows_scanned = monitor.bytes_total, monitor.rows_total
            job.sealed_sources = b""
            audit.record(session, actor=WORKER_ACTOR, action="discovery.scan_job.finish", object_type="scan_job",
                         object_id=str(job.id), organization_id=job.organization_id,
                         details={"status": status, "sources_done": job.sources_done,
                                  "sources_failed": job.sources_failed, "findings": job.findings})
            _delete_uploads_later(session, items)
        log.info("scan job %s %s", lease.job_id, status)
        return status


class _Monitor:
    """Progress and heartbeat of one running job, written by a background thread; the scan thread only
    adds numbers and checks the flags this thread sets (cancel requested, lease lost)."""

    def __init__(self, worker: ScanWorker, lease: _Lease, bytes_base: int, rows_base: int) -> None:
        self.worker, self.lease = worker, lease
        self.bytes_total, self.rows_total = bytes_base, rows_base
        self.cancelled = self.lost = False
        self._written: tuple[int, int] = (-1, -1)
        self._last_write = 0.0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"scan-job-{self.lease.job_id}-monitor", daemon=True)
        self._thread.start()

    def progress(self, update_: ProgressUpdate) -> None:
        self.bytes_total += update_.bytes
        self.rows_total += update_.rows
        self.check()

    def check(self) -> None:
        if self.lost:
            raise _Stop("lease")
        if self.cancelled:
            raise _Stop("cancel")
        if self.worker.stop.is_set():
            raise _Stop("shutdown")

    def _loop(self) -> None:
        interval = min(self.worker.progress_seconds, self.worker.heartbeat_seconds)
        while not self._done.wait(interval):
            try:
                self.write()
            except Exception as exc:  # noqa: BLE001 - try again next tick; a long outage makes the job stale
                log.warning("scan job %s: progress not written (%s)", self.lease.job_id, type(exc).__name__)

    def write(self, *, force: bool = False) -> None:
        now = time.monotonic()
        numbers = (self.bytes_total, self.rows_total)
        if not force and numbers == self._written and now - self._last_write < self.worker.heartbeat_seconds:
            return
        with self.worker.platform.db.transaction() as session:
            written = session.execute(update(ScanJob).where(*self.lease.where()).values(
                bytes_scanned=numbers[0], rows_scanned=numbers[1], heartbeat_at=utcnow())).rowcount
            if not written:
                self.lost = True
                return
            self.cancelled = bool(session.scalar(select(ScanJob.cancel_requested)
                                                 .where(ScanJob.id == self.lease.job_id)))
        self._written, self._last_write = numbers, now

    def finish(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def _expand(items: list[dict[str, str]], roots: Sequence[Path], recorded: set[str], locators: dict[str, str],
            failures: list[str], monitor: _Monitor) -> Iterator[str]:
    """The job's inputs as the scanner reads them, checked again now: paths still under the roots,
    directories walked here (links leading outside the roots refused, special files skipped), sources an
    earlier attempt recorded left out. ``locators`` gets ``upload:<name>`` for uploaded files."""
    for index, item in enumerate(items):
        monitor.check()
        if "upload" in item:
            path = item["upload"]
            locator = datamap.UPLOAD_PREFIX + item["name"]
            if locator in recorded:
                continue
            locators[path] = locator
            yield path
        elif "url" in item:
            url = item["url"]
            if datamap.locator_for(url) in recorded:
                continue
            if url.startswith("sqlite"):
                from sqlalchemy.engine import make_url

                database = make_url(url).database or ""
                if not under_roots(Path(database).resolve(), roots):
                    failures.append(f"sources[{index}]: no longer under a scan root")
                    continue
            yield url
        else:
            path = Path(item["path"])
            if not under_roots(path.resolve(), roots):
                failures.append(f"sources[{index}]: no longer under a scan root")
                continue
            if path.is_dir():
                yield from _walk(path, roots, recorded, failures, index, monitor)
            elif str(path) not in recorded:
                yield str(path)


def _walk(root: Path, roots: Sequence[Path], recorded: set[str], failures: list[str], index: int,
          monitor: _Monitor) -> Iterator[str]:
    refused = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            monitor.check()
            path = Path(dirpath) / filename
            try:
                real = path.resolve()
                mode = real.stat().st_mode
            except (OSError, RuntimeError):
                continue  # vanished, or a broken link: nothing to read
            if not under_roots(real, roots):
                refused += 1
                continue
            if not stat.S_ISREG(mode):
                continue  # sockets, pipes, devices: never read (a pipe would block the worker)
            if str(real) in recorded:
                continue
            yield str(real)
    if refused:
        failures.append(f"sources[{index}]: {refused} link(s) lead outside the scan roots and were not read")


# --- clean-up and the server's worker threads ---------------------------------------------------------


def clean_uploads(platform: Platform, *, grace_seconds: float = UPLOAD_GRACE_SECONDS) -> int:
    """Delete upload directories no queued or running job refers to (older than ``grace_seconds``, so an
    upload whose job row is being committed right now is left alone). Returns how many were deleted."""
    root = uploads_root(platform)
    if not root.is_dir():
        return 0
    keep: set[str] = set()
    with platform.db.reader() as session:
        for job in session.scalars(select(ScanJob).where(ScanJob.status.in_(ACTIVE))):
            if any(s.startswith(datamap.UPLOAD_PREFIX) for s in job.sources or ()):
                try:
                    keep.update(str(Path(i["upload"]).parent) for i in unseal(platform, session, job) if "upload" in i)
                except QorgauError:
                    log.warning("scan job %s: sealed inputs unreadable; its uploads are kept", job.id)
                    return 0
    deleted = 0
    now = time.time()
    for entry in root.iterdir():
        if str(entry) in keep or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            if now - entry.stat().st_mtime < grace_seconds:
                continue
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        deleted += 1
    if deleted:
        log.info("deleted %d orphaned upload director(y/ies)", deleted)
    return deleted


class WorkerThreads:
    """The API server's scan workers: ``count`` threads, started and stopped with the app."""

    def __init__(self, platform: Platform, count: int) -> None:
        self.stop_event = threading.Event()
        self.workers = [ScanWorker(platform, name=f"{socket.gethostname()}:{os.getpid()}:t{n}", stop=self.stop_event)
                        for n in range(count)]
        self.threads = [threading.Thread(target=w.run_forever, name=f"scan-worker-{n}", daemon=True)
                        for n, w in enumerate(self.workers)]

    def start(self) -> WorkerThreads:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop between two chunks; a job in progress goes back to the queue for the next worker."""
        self.stop_event.set()
        _wake.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


def start_workers(platform: Platform, count: int | None = None) -> WorkerThreads:
    """Start ``count`` (default ``settings.scan_workers``) worker threads; 0 starts none."""
    count = platform.settings.scan_workers if count is None else count
    return WorkerThreads(platform, max(0, count)).start()


__all__ = ["JobOptions", "ScanWorker", "SourceRejected", "StagedUploads", "UploadTooLarge", "WorkerThreads",
           "cancel", "check_source", "clean_uploads", "get_job", "job_dict", "list_jobs", "scan_roots",
           "staged_uploads", "start_workers", "submit", "submit_uploads", "unseal", "wake_workers"]
