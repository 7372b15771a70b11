"""Redacting whole files, each kept in its own format.

:func:`redact_file` writes a redacted copy of one file: text, CSV/TSV, JSON Lines, a JSON document,
an XLSX workbook, a DOCX document or a Parquet file — and, for PDF, only the extracted text. The
operators are :class:`~qorgau.discovery.redact.Redactor`'s (mask, replace, hash, encrypt, drop); the
file is one document, so ``replace`` placeholders are stable across all of it. Redaction is
depersonalization under L-PD-DEPERS (PD law Art.1(7), mandatory before research use by Art.17).

What each format keeps and what is redacted (``docs/redaction.md`` has the long form):

* **xlsx** (openpyxl, the whole workbook in memory): every sheet; string cells scanned, numbers
  scanned as text (an IIN typed as a number is still an IIN; a number holding personal data becomes a
  text cell), ``columns`` cells (by the header in row 1) redacted whole. Styles, number formats,
  merged cells, column widths, data validation and formulas are kept. A formula holding personal data
  in a string literal keeps working with the literal redacted; one holding it elsewhere (a number
  literal) is replaced by its redacted text. Cached formula results are not written (openpyxl never
  writes them): Excel recalculates them from the redacted cells on open. Comments (text and author),
  headers/footers, hyperlinks, defined names, sheet titles (renamed, references in formulas and names
  follow), document properties (creator, last modified by: always, as ``PERSON``) are redacted; other
  XML parts openpyxl carries over (charts' cached values, pivot caches, drawings' text, external link
  caches, threaded comments) are redacted node by node. openpyxl's own limits apply: shapes and form
  controls are not kept, rich text inside one cell becomes plain text, images need Pillow.
* **docx** (python-docx, XML level): every paragraph of the body, tables, text boxes, headers,
  footers, footnotes, endnotes and comments; tracked deletions (``w:delText``) and field codes (a
  ``HYPERLINK "mailto:…"``) as well as visible text; a finding that spans several runs is replaced in
  the first run (its formatting is kept) and removed from the others. Authors of comments and revisions,
  core properties, external link targets, image alt texts, the other XML parts (app/custom
  properties, people, custom XML, charts, diagrams) are redacted; the thumbnail (a picture of the
  first page) is removed.
* **parquet** (pyarrow): streamed batch by batch, each batch one row group, the compression per column
  kept; string columns (and strings nested in lists, structs and maps) scanned; ``columns`` columns
  redacted whole (a named non-string column becomes a string column, except for ``drop``, which writes
  nulls). Other non-string columns are left alone; integer columns are *checked*, and values in them
  that look like personal data are reported (the report's ``unredacted``; exit code 4 in the CLI).
* **json** (one document): every string value and every integer scanned, object keys too (a document
  keyed by IIN); structure and key order kept; ``columns`` names keys, at any depth.
* **pdf**: refused. Removing glyphs from content streams is not something pypdf (or any library we
  may ship: PyMuPDF is AGPL) does reliably, and a black box over text leaves the text in the file.
  ``to_text=True`` writes the extracted text of every page, redacted, with page markers.

Every output is written to a temporary file beside the target and renamed into place only when
complete, so a crash or an error never leaves a half-written output. XLSX and DOCX outputs are then
*verified*: every text node and attribute of every XML part is scanned again (structured identifiers,
deny list and custom recognizers; paragraphs as a whole; what the operators wrote — masked values,
hashes, ciphertexts, placeholders — is not a finding) and an output in which anything remains is not
kept (:class:`ResidualPersonalData`, naming the parts). Images and embedded objects cannot be
inspected; the report says how many there were.

Reports hold counts per type, per operator and per place (cells, comments, properties …), never
values; errors name the file, the sheet or the column, never a cell's content.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import re
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from ..core.errors import InvalidInput, QorgauError
from .redact import Redactor

if TYPE_CHECKING:
    from .types import Finding


class TextScanner(Protocol):
    def scan(self, text: str) -> list[Finding]: ...


# --- kinds --------------------------------------------------------------------------------------------

KIND_BY_EXTENSION: dict[str, str] = {
    ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".docx": "docx", ".docm": "docx", ".parquet": "parquet", ".pdf": "pdf",
}
KINDS: tuple[str, ...] = ("text", "csv", "tsv", "jsonl", "json", "xlsx", "docx", "parquet", "pdf")
BINARY_KINDS = frozenset({"xlsx", "docx", "parquet"})  # never written to a terminal
COLUMN_KINDS = frozenset({"csv", "tsv", "jsonl", "json", "xlsx", "parquet"})  # where ``columns`` applies
MEDIA_TYPES: dict[str, str] = {
    "text": "text/plain; charset=utf-8", "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8", "jsonl": "application/x-ndjson",
    "json": "application/json", "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
OUTPUT_SUFFIX: dict[str, str] = {"text": ".txt", "csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "json": ".json",
                                 "xlsx": ".xlsx", "docx": ".docx", "parquet": ".parquet"}

JSON_DOCUMENT_MAX_BYTES = 64 * 1024 * 1024  # a larger document should be JSON Lines (streamed)
PACKAGE_MAX_UNPACKED_BYTES = 2 * 1024**3  # an XLSX/DOCX that unpacks to more is refused (a zip bomb, or too big)
PARQUET_BATCH_ROWS = 65_536  # rows per batch read and per row group written: memory stays bounded
SNIFF_BYTES = 64 * 1024
# Types whose findings depend on context that a single XML node lacks: not used to verify outputs.
CONTEXT_TYPES = frozenset({"PERSON", "ADDRESS", "DATE_OF_BIRTH"})
# Replacements the operators write; a digit run inside one (a hash's hex, base64) is not a finding.
_DECIMAL = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
_REDACTION_TOKEN = re.compile(r"[A-Z][A-Z0-9_]*:hmac:[0-9a-f]{16}|ENC\[[A-Za-z0-9_-]+\]|\[[A-Z][A-Z0-9_]*_\d+\]")

PDF_REFUSAL = ("PDF cannot be redacted in place: removing the glyphs from a page's content streams is not "
               "something pypdf does reliably, and a box drawn over text leaves the text in the file. "
               "Use --to-text (API: to_text=true) to get the extracted text, redacted, page by page; or "
               "redact the source document (DOCX/XLSX) and export it to PDF again.")


def file_kind(name: str) -> str:
    """The kind of a file from its extension; anything unknown is read as text."""
    return KIND_BY_EXTENSION.get(Path(name).suffix.lower(), "text")


def default_output(input_path: Path, kind: str, *, to_text: bool = False) -> Path:
    """``clients.xlsx`` → ``clients.redacted.xlsx`` beside it (``clients.redacted.txt`` for a PDF's text)."""
    suffix = ".txt" if kind == "pdf" and to_text else (input_path.suffix or OUTPUT_SUFFIX.get(kind, ".txt"))
    return input_path.with_name(f"{input_path.stem}.redacted{suffix}")


# --- errors and the report -------------------------------------------------------------------------------


class UnreadableFile(QorgauError):
    """The input is corrupt, encrypted or not what its extension says. Names the file, never content."""

    code = "unreadable_file"
    status = 422


class ResidualPersonalData(QorgauError):
    """Verification found personal data left in the written output, which was therefore not kept."""

    code = "residual_personal_data"
    status = 422


@dataclass
class FileRedactionReport:
    """What one file's redaction did: counts only, never a value (safe for logs, stderr and headers).

    ``places`` counts redactions by where they were (cells, formulas, comments, properties …);
    ``unredacted`` counts values that look like personal data but could not be redacted in place
    (Parquet integer columns not named in ``columns``); ``left_out`` records that were not written at
    all (a JSON Lines line that is not an object), with ``problems`` saying which line and why.
    """

    input: str
    output: str
    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    operators: dict[str, int] = field(default_factory=dict)
    places: Counter[str] = field(default_factory=Counter)
    unredacted: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    left_out: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def complete(self) -> bool:
        """True when every record was written and nothing known to be personal data stayed."""
        return not self.left_out and not self.unredacted

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "kind": self.kind, "total": self.total,
                "counts": dict(sorted(self.counts.items())), "operators": dict(sorted(self.operators.items())),
                "places": dict(sorted(self.places.items())),
                "unredacted": {k: dict(v) for k, v in self.unredacted.items()},
                "left_out": self.left_out, "problems": list(self.problems), "notes": list(self.notes)}

    def header_counts(self) -> dict[str, Any]:
        """The counts for an HTTP header: types, operators, places."""
        return {"total": self.total, "counts": dict(sorted(self.counts.items())),
                "operators": dict(sorted(self.operators.items())), "places": dict(sorted(self.places.items())),
                "left_out": self.left_out, "unredacted": sum(sum(v.values()) for v in self.unredacted.values())}


class _Memo:
    """Findings of short texts remembered per file: spreadsheets and tables repeat their values (cities,
    statuses, the same client on many rows), and a finding depends on nothing but the text.

    Bounded and per file (never process-wide), so scanned values do not outlive the redaction.
    """

    LIMIT = 65_536
    MAX_CHARS = 256
    CLEAN_LIMIT = 1_000_000

    def __init__(self, scanner: TextScanner) -> None:
        self._scanner = scanner
        self._seen: dict[str, list[Finding]] = {}
        # Texts scanned with no finding at all. Verification skips them when they come back unchanged:
        # a verifier that is this scanner restricted to fewer types cannot find anything in them either.
        self.clean: set[str] = set()

    def scan(self, text: str) -> list[Finding]:
        if len(text) > self.MAX_CHARS:
            found = self._scanner.scan(text)
        else:
            hit = self._seen.get(text)
            if hit is None:
                if len(self._seen) >= self.LIMIT:
                    self._seen.clear()
                hit = self._seen[text] = self._scanner.scan(text)
            found = hit
        if not found and len(text) <= 4096 and len(self.clean) < self.CLEAN_LIMIT:
            self.clean.add(text)
        return found

    def __repr__(self) -> str:
        return f"_Memo({len(self._seen)} texts)"


class _Job:
    """One file's redaction: the redactor (one document), the scanner, the report being filled."""

    def __init__(self, redactor: Redactor, scanner: TextScanner, report: FileRedactionReport) -> None:
        self.redactor = redactor
        self.scanner = _Memo(scanner)
        self.report = report

    def text(self, value: str) -> str:
        """Free text: every finding replaced by its operator."""
        if not value or value.isspace():
            return value
        findings = self.scanner.scan(value)
        return self.redactor.redact_text(value, findings).text if findings else value

    def whole(self, value: Any, operator: str) -> Any:
        return self.redactor.redact_whole(value, operator, self.scanner)  # type: ignore[arg-type]

    def person(self, value: str | None) -> str | None:
        """An author or editor: personal data by definition, whether or not a recognizer agrees.

        Typed by what it is when one finding covers all of it (an author written as an e-mail is masked
        as an e-mail), else ``PERSON``; the type's operator applies.
        """
        if not value or value.isspace():
            return value
        stripped = value.strip()
        findings = self.scanner.scan(stripped)
        whole = len(findings) == 1 and findings[0].start == 0 and findings[0].end == len(stripped)
        kind = findings[0].type if whole else "PERSON"
        return self.redactor.redact_value(kind, value, self.redactor.operator_for(kind))

    @contextlib.contextmanager
    def place(self, name: str) -> Iterator[None]:
        before = sum(self.redactor.counts.values())
        yield
        done = sum(self.redactor.counts.values()) - before
        if done:
            self.report.places[name] += done


# --- the service --------------------------------------------------------------------------------------


def redact_file(input_path: str | Path, output_path: str | Path, *, redactor: Redactor, scanner: TextScanner,
                verifier: TextScanner | None = None, kind: str | None = None, text_field: str | None = None,
                to_text: bool = False, display_name: str | None = None,
                max_unpacked_bytes: int = PACKAGE_MAX_UNPACKED_BYTES) -> FileRedactionReport:
    """Write a redacted copy of ``input_path`` to ``output_path`` (never the same file), atomically.

    ``scanner`` finds what to redact (its threshold applies); ``verifier`` re-scans XLSX/DOCX outputs
    (default: ``scanner`` restricted to types that need no context — pass one built with the same
    allow/deny lists and custom recognizers). ``redactor.columns`` names whole-value columns (keys for
    JSON). ``text_field`` limits JSON Lines redaction to that field. ``display_name`` is how errors and
    the report name the input (an uploaded file's temporary path means nothing to its sender).
    ``max_unpacked_bytes`` caps what an XLSX/DOCX may unpack to (checked before it is opened).

    Raises :class:`InvalidInput` for bad options (unknown column, PDF without ``to_text``),
    :class:`UnreadableFile` for a corrupt input, :class:`ResidualPersonalData` when verification fails;
    in every case nothing is left at ``output_path``.
    """
    source = Path(input_path)
    target = Path(output_path)
    name = display_name or source.name
    kind = kind or file_kind(source.name)
    if kind not in KINDS:
        raise InvalidInput(f"unknown file kind; use one of: {', '.join(KINDS)}", field="kind")
    if kind == "pdf" and not to_text:
        raise InvalidInput(PDF_REFUSAL, field="to_text")
    if to_text and kind != "pdf":
        raise InvalidInput("to_text applies to PDF files", field="to_text")
    if redactor.columns and kind not in COLUMN_KINDS:
        raise InvalidInput(f"columns apply to {', '.join(sorted(COLUMN_KINDS))} files", field="columns")
    if text_field is not None and kind != "jsonl":
        raise InvalidInput("text_field applies to JSON Lines files", field="text_field")
    if not source.is_file():
        raise InvalidInput(f"{name}: no such file", field="input")
    if _same_file(source, target):
        raise InvalidInput(f"{name}: the output must be a new file, not the input (redaction never works in place)",
                           field="output")
    if kind in ("xlsx", "docx"):
        _check_package(source, name, kind, max_unpacked_bytes)
    report = FileRedactionReport(input=name, output=str(target), kind="pdf-text" if kind == "pdf" else kind)
    job = _Job(redactor, scanner, report)
    writer = _WRITERS[kind]
    with atomic_output(target) as temporary:
        writer(source, temporary, job, name, text_field)
        if kind in ("xlsx", "docx"):
            verify_package(temporary, verifier or _structured(scanner), name, clean=job.scanner.clean)
    report.counts = dict(redactor.counts)
    report.operators = dict(redactor.operators)
    return report


def redact_stream(raw: IO[bytes], sink: IO[str], *, redactor: Redactor, scanner: TextScanner,
                  name: str = "stdin") -> FileRedactionReport:
    """Text from a byte stream (stdin) to a text sink, line by line; the encoding is detected."""
    report = FileRedactionReport(input=name, output="stdout", kind="text")
    job = _Job(redactor, scanner, report)
    head = raw.read(SNIFF_BYTES)
    with _text_reader(io.BufferedReader(_Prefixed(head, raw)), head, name) as lines:
        for line in lines:
            sink.write(job.text(line))
    report.counts = dict(redactor.counts)
    report.operators = dict(redactor.operators)
    return report


def redact_to_sink(input_path: str | Path, sink: IO[str], *, redactor: Redactor, scanner: TextScanner,
                   kind: str | None = None, text_field: str | None = None) -> FileRedactionReport:
    """A text-kind file (text, CSV/TSV, JSON Lines, JSON) redacted straight into ``sink`` (stdout)."""
    source = Path(input_path)
    kind = kind or file_kind(source.name)
    if kind not in _TEXT_WRITERS:
        raise InvalidInput(f"{kind} output is binary: give an output file", field="output")
    if redactor.columns and kind not in COLUMN_KINDS:
        raise InvalidInput("columns apply to csv, tsv, jsonl, json, xlsx and parquet files", field="columns")
    if text_field is not None and kind != "jsonl":
        raise InvalidInput("text_field applies to JSON Lines files", field="text_field")
    if not source.is_file():
        raise InvalidInput(f"{source.name}: no such file", field="input")
    report = FileRedactionReport(input=source.name, output="stdout", kind=kind)
    job = _Job(redactor, scanner, report)
    _TEXT_WRITERS[kind](source, sink, job, source.name, text_field)
    report.counts = dict(redactor.counts)
    report.operators = dict(redactor.operators)
    return report


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` (mode 0600), renamed onto it only if the block completes."""
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InvalidInput(f"{target}: the output's directory does not exist", field="output")
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=directory)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def _check_package(source: Path, name: str, kind: str, limit: int) -> None:
    """A zip package's declared sizes, before any library unpacks it: a few MiB can inflate to many GiB."""
    try:
        with zipfile.ZipFile(source) as package:
            unpacked = sum(info.file_size for info in package.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableFile(f"{name}: not a readable {kind.upper()} file ({type(exc).__name__})", field="file") from None
    if unpacked > limit:
        raise UnreadableFile(f"{name}: unpacks to {unpacked // 2**20} MiB, over the limit of {limit // 2**20} MiB",
                             field="file")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _structured(scanner: TextScanner) -> TextScanner:
    """The scanner's findings of types that need no context (used when no verifier is given)."""
    return _TypeFilter(scanner, exclude=CONTEXT_TYPES)


class _TypeFilter:
    def __init__(self, scanner: TextScanner, exclude: frozenset[str]) -> None:
        self._scanner = scanner
        self._exclude = exclude

    def scan(self, text: str) -> list[Finding]:
        return [f for f in self._scanner.scan(text) if f.type not in self._exclude]


# --- text, CSV/TSV, JSON Lines --------------------------------------------------------------------------


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read for sniffing."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        self._head = head
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


@contextlib.contextmanager
def _text_reader(raw: IO[bytes], head: bytes, name: str) -> Iterator[IO[str]]:
    from .sources import detect_encoding

    encoding = detect_encoding(head)
    if encoding is None:
        raise UnreadableFile(f"{name}: binary content (no text encoding detected)", field="file")
    # newline="": lines keep their own endings (\r\n stays \r\n), as the csv module also requires.
    stream = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")  # type: ignore[arg-type]
    try:
        yield stream
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{name}: not valid {exc.encoding} text after the first bytes", field="file") from None
    finally:
        stream.detach()


@contextlib.contextmanager
def _open_text(path: Path, name: str) -> Iterator[IO[str]]:
    with path.open("rb") as raw:
        head = raw.read(SNIFF_BYTES)
        raw.seek(0)
        with _text_reader(raw, head, name) as lines:
            yield lines


@contextlib.contextmanager
def _sink(target: Path | IO[str]) -> Iterator[IO[str]]:
    if isinstance(target, Path):
        with target.open("w", encoding="utf-8", newline="") as fh:
            yield fh
    else:
        yield target


def _write_text(source: Path, target: Path | IO[str], job: _Job, name: str, text_field: str | None) -> None:
    # Line by line: memory stays flat, and a line is the scanner's unit of context.
    with _open_text(source, name) as lines, _sink(target) as out:
        for line in lines:
            out.write(job.text(line))


def _write_table(source: Path, target: Path | IO[str], job: _Job, name: str, text_field: str | None) -> None:
    delimiter = "\t" if source.suffix.lower() == ".tsv" else ","
    redactor = job.redactor
    with _open_text(source, name) as lines, _sink(target) as out:
        reader = csv.DictReader(lines, delimiter=delimiter)
        try:
            header = reader.fieldnames or []
            missing = [c for c in redactor.columns if c not in header]
            if missing:
                raise InvalidInput(f"{name}: no column named {', '.join(repr(c) for c in missing)} in the header",
                                   field="columns")
            writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
            writer.writerow(header)
            with job.place("cells"):
                for row in reader:
                    extra = row.pop(None, None)  # type: ignore[call-overload]  # cells beyond the header
                    redacted = redactor.redact_row(row, job.scanner)  # type: ignore[arg-type]
                    cells = [redacted.get(column, "") for column in header]
                    cells.extend(redactor.scan_value(cell, job.scanner) for cell in extra or ())  # type: ignore[arg-type]
                    writer.writerow(cells)
        except csv.Error:
            raise UnreadableFile(f"{name}: line {reader.line_num}: malformed CSV", field="file") from None


def _write_jsonl(source: Path, target: Path | IO[str], job: _Job, name: str, text_field: str | None) -> None:
    only = None if text_field is None else [text_field]
    report = job.report
    with _open_text(source, name) as lines, _sink(target) as out:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                report.left_out += 1
                report.problems.append(f"line {number}: not a JSON object; left out")
                continue
            if text_field is not None and not isinstance(record.get(text_field), str):
                report.left_out += 1
                report.problems.append(f"line {number}: field {text_field!r} is missing or not a string; left out")
                continue
            with job.place("records"):
                redacted = job.redactor.redact_row(record, job.scanner, only=only)  # type: ignore[arg-type]
            out.write(json.dumps(redacted, ensure_ascii=False) + "\n")


# --- one JSON document ------------------------------------------------------------------------------------


def _write_json(source: Path, target: Path | IO[str], job: _Job, name: str, text_field: str | None) -> None:
    size = source.stat().st_size
    if size > JSON_DOCUMENT_MAX_BYTES:
        raise UnreadableFile(f"{name}: a JSON document over {JSON_DOCUMENT_MAX_BYTES // 2**20} MiB is not loaded "
                             "whole; write it as JSON Lines (.jsonl), which is streamed", field="file")
    with _open_text(source, name) as stream:
        text = stream.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = "; one object per line is JSON Lines: name the file .jsonl" if exc.msg == "Extra data" else ""
        raise UnreadableFile(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}",
                             field="file") from None
    except RecursionError:
        raise UnreadableFile(f"{name}: JSON nested too deeply", field="file") from None
    walker = _JsonWalker(job)
    try:
        redacted = walker.value(document)
    except RecursionError:
        raise UnreadableFile(f"{name}: JSON nested too deeply", field="file") from None
    missing = [c for c in job.redactor.columns if c not in walker.keys_seen]
    if missing:
        raise InvalidInput(f"{name}: no key named {', '.join(repr(c) for c in missing)} anywhere in the document",
                           field="columns")
    if walker.renamed_keys:
        job.report.notes.append(f"{walker.renamed_keys} object key(s) held personal data and were redacted")
    if walker.collisions:
        job.report.notes.append(f"{walker.collisions} redacted key(s) collided with another key and got a #N suffix")
    indent = 2 if "\n" in text.strip() else None
    with _sink(target) as out:
        json.dump(redacted, out, ensure_ascii=False, indent=indent)
        out.write("\n")


class _JsonWalker:
    """Every string and integer scanned, keys too; ``columns`` keys redacted whole at any depth."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.columns = job.redactor.columns
        self.keys_seen: set[str] = set()
        self.renamed_keys = 0
        self.collisions = 0

    def value(self, node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, child in node.items():
                operator = self.columns.get(key)
                if operator is not None:
                    self.keys_seen.add(key)
                with self.job.place("keys"):
                    new_key = self.job.text(key)
                if new_key != key:
                    self.renamed_keys += 1
                new_key = self._unique(new_key, out)
                if operator is not None:
                    with self.job.place("values"):
                        out[new_key] = self._whole(child, operator)
                else:
                    out[new_key] = self.value(child)
            return out
        if isinstance(node, list):
            return [self.value(child) for child in node]
        if isinstance(node, str):
            with self.job.place("values"):
                return self.job.text(node)
        if isinstance(node, int) and not isinstance(node, bool):
            text = str(node)
            with self.job.place("values"):
                redacted = self.job.text(text)
            return node if redacted == text else redacted
        return node

    def _whole(self, node: Any, operator: str) -> Any:
        if isinstance(node, dict):
            return {key: self._whole(child, operator) for key, child in node.items()}
        if isinstance(node, list):
            return [self._whole(child, operator) for child in node]
        if node is None or isinstance(node, bool):
            return node
        return self.job.whole(node, operator)

    def _unique(self, key: str, taken: dict[str, Any]) -> str:
        if key not in taken:
            return key
        self.collisions += 1
        n = 2
        while f"{key}#{n}" in taken:
            n += 1
        return f"{key}#{n}"


# --- Parquet -------------------------------------------------------------------------------------------------


def _write_parquet(source: Path, target: Path | IO[str], job: _Job, name: str, text_field: str | None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert isinstance(target, Path)
    try:
        parquet = pq.ParquetFile(source)
        schema = parquet.schema_arrow
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise UnreadableFile(f"{name}: not a readable Parquet file ({type(exc).__name__})", field="file") from None
    columns = job.redactor.columns
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise InvalidInput(f"{name}: no column named {', '.join(repr(c) for c in missing)}", field="columns")
    plans: list[tuple[pa.Field, str, str | None]] = []  # (field, how, whole-value operator)
    fields: list[pa.Field] = []
    for f in schema:
        operator = columns.get(f.name)
        if operator is not None:
            how = "whole"
            if not _is_string(f.type) and operator != "drop":
                f = f.with_type(pa.large_string() if pa.types.is_large_string(f.type) else pa.string())
                job.report.notes.append(f"column {f.name!r} became a string column (redacted values are text)")
        elif _is_string(f.type) or (pa.types.is_dictionary(f.type) and _is_string(f.type.value_type)):
            how = "scan"
        elif _has_strings(f.type):
            how = "nested"
        elif pa.types.is_integer(f.type):
            how = "check"
        else:
            how = "keep"
        plans.append((f, how, operator))
        fields.append(f)
    metadata = dict(schema.metadata or {})
    if any(a.type != b.type for a, b in zip(fields, schema)):
        metadata.pop(b"pandas", None)  # pandas' own description of the column types is no longer true
    out_schema = pa.schema(fields, metadata=metadata or None)
    writer = pq.ParquetWriter(target, out_schema, compression=_compression(parquet))
    try:
        for batch in _batches(parquet, name):
            arrays = [_redact_column(batch.column(i), f, how, operator, job) for i, (f, how, operator) in enumerate(plans)]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=out_schema))
    finally:
        writer.close()
    unredacted = job.report.unredacted
    for column, types in unredacted.items():
        job.report.notes.append(f"{column}: {sum(types.values())} integer value(s) look like personal data and were "
                                "left as numbers; name the column in columns to redact it")


def _batches(parquet: Any, name: str) -> Iterator[Any]:
    iterator = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001
            raise UnreadableFile(f"{name}: a row group could not be read ({type(exc).__name__})", field="file") from None
        yield batch


def _is_string(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t)


def _has_strings(t: Any) -> bool:
    import pyarrow as pa

    if _is_string(t):
        return True
    if pa.types.is_dictionary(t):
        return _has_strings(t.value_type)
    if pa.types.is_struct(t):
        return any(_has_strings(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _has_strings(t.key_type) or _has_strings(t.item_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_strings(t.value_type)
    return False


def _compression(parquet: Any) -> dict[str, str] | str:
    """The input's codec per column (from its first row group), so the output is stored alike."""
    metadata = parquet.metadata
    if metadata.num_row_groups == 0:
        return "snappy"
    group = metadata.row_group(0)
    codecs: dict[str, str] = {}
    for i in range(group.num_columns):
        column = group.column(i)
        codec = {"uncompressed": "none", "lz4_raw": "lz4"}.get(str(column.compression).lower(),
                                                                str(column.compression).lower())
        top = column.path_in_schema.split(".")[0]
        codecs.setdefault(top, codec if codec in ("snappy", "gzip", "brotli", "zstd", "lz4", "none") else "snappy")
    if len(set(codecs.values())) == 1:
        return next(iter(codecs.values()))
    return codecs


def _redact_column(array: Any, f: Any, how: str, operator: str | None, job: _Job) -> Any:
    import pyarrow as pa

    if how == "keep":
        return array
    if how == "check":
        _check_integers(array, f.name, job)
        return array
    values = array.to_pylist()
    if how == "whole":
        assert operator is not None
        with job.place("cells"):
            if operator == "drop" and not _is_string(f.type):
                out = [None] * len(values)
            else:
                out = [None if v is None else job.whole(v if isinstance(v, str) else _number_text(v), operator)
                       for v in values]
    elif how == "scan":
        with job.place("cells"):
            out = [v if v is None else job.text(v) for v in values]
    else:  # nested
        with job.place("cells"):
            out = [_deep_strings(v, job) for v in values]
    if pa.types.is_dictionary(f.type):
        return pa.array(out, type=f.type.value_type).dictionary_encode().cast(f.type)
    return pa.array(out, type=f.type)


def _deep_strings(value: Any, job: _Job) -> Any:
    if isinstance(value, str):
        return job.text(value)
    if isinstance(value, dict):
        return {k: _deep_strings(v, job) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_strings(v, job) for v in value]
    if isinstance(value, tuple):  # map entries
        return tuple(_deep_strings(v, job) for v in value)
    return value


def _check_integers(array: Any, column: str, job: _Job) -> None:
    """Integers are not rewritten (the schema is kept) but they are scanned, and what looks like personal
    data is reported: an IIN column stored as int64 must not pass silently."""
    found: Counter[str] = Counter()
    for value in array.to_pylist():
        if value is None:
            continue
        for finding in job.scanner.scan(str(value)):
            found[finding.type] += 1
    if found:
        slot = job.report.unredacted.setdefault(f"column {column!r}", {})
        for kind, n in found.items():
            slot[kind] = slot.get(kind, 0) + n


def _number_text(value: Any) -> str:
    """A number as a person would write it: an integral float loses its ``.0`` (Excel stores IINs as floats)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        if isinstance(value, dt.datetime) and value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat()
    return str(value)


# --- PDF: the text only ------------------------------------------------------------------------------------


def _write_pdf_text(source: Path, target: Path | IO[str], job: _Job, name: str, text_field: str | None) -> None:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(source))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile(f"{name}: encrypted PDF (a password is needed)", field="file")
        pages = list(reader.pages)
    except UnreadableFile:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds for a damaged file
        raise UnreadableFile(f"{name}: not a readable PDF ({type(exc).__name__})", field="file") from None
    empty: list[int] = []
    with _sink(target) as out:
        out.write(f"# {len(pages)} page(s), text extracted and redacted by qorgau; layout, images and "
                  "metadata are not included\n")
        for number, page in enumerate(pages, start=1):
            try:
                text = page.extract_text() or ""
            except Exception as exc:  # noqa: BLE001
                raise UnreadableFile(f"{name}: page {number}: text could not be extracted ({type(exc).__name__})",
                                     field="file") from None
            out.write(f"\n=== page {number} ===\n")
            if not text.strip():
                empty.append(number)
                out.write("[no extractable text: a scanned image is not OCR'd; check this page by eye]\n")
                continue
            with job.place("pages"):
                out.write(job.text(text).rstrip("\n") + "\n")
    if empty:
        shown = ", ".join(str(n) for n in empty[:20]) + (" …" if len(empty) > 20 else "")
        job.report.notes.append(f"{len(empty)} page(s) without extractable text (scanned images are not OCR'd): {shown}")


# --- XLSX ----------------------------------------------------------------------------------------------------

_BAD_TITLE = str.maketrans({"[": "(", "]": ")", ":": "-", "*": "#", "?": "_", "/": "_", "\\": "_"})


def _write_xlsx(source: Path, target: Path | IO[str], job: _Job, name: str, text_field: str | None) -> None:
    from openpyxl import load_workbook

    assert isinstance(target, Path)
    try:
        workbook = load_workbook(source, keep_vba=source.suffix.lower() == ".xlsm", keep_links=True)
    except Exception as exc:  # noqa: BLE001 - zipfile, lxml and openpyxl errors alike mean "not a workbook"
        raise UnreadableFile(f"{name}: not a readable XLSX workbook ({type(exc).__name__})", field="file") from None
    xlsx = _Workbook(workbook, job, name)
    xlsx.check_columns()
    xlsx.rename_sheets()
    xlsx.redact_sheets()
    xlsx.redact_names()
    xlsx.redact_properties()
    staged = target.with_name(target.name + ".openpyxl")
    try:
        workbook.save(staged)
        _rewrite_package(staged, target, job, _XLSX_HANDLED)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
    lost = _media_count(source) - _media_count(target)
    if lost > 0:  # openpyxl drops images without Pillow, and shapes/controls always: say so
        job.report.notes.append(f"{lost} image(s) or media part(s) of the workbook could not be kept by openpyxl")


def _media_count(path: Path) -> int:
    with zipfile.ZipFile(path) as package:
        return sum(1 for name in package.namelist() if name.startswith("xl/media/"))


class _Workbook:
    """One workbook's redaction with openpyxl (loaded whole: see the module docstring for why)."""

    def __init__(self, workbook: Any, job: _Job, name: str) -> None:
        self.wb = workbook
        self.job = job
        self.name = name
        self.renames: dict[str, str] = {}
        self.formulas_kept = 0
        self.formulas_replaced = 0
        self.headers: dict[str, dict[int, str]] = {}  # sheet title -> column index -> header text
        for ws in workbook.worksheets:
            # ws._cells: only the cells that exist (iter_rows would create every cell of the range).
            self.headers[ws.title] = {c: _number_text(cell.value).strip() for (r, c), cell in ws._cells.items()
                                      if r == 1 and cell.value is not None}

    def check_columns(self) -> None:
        wanted = self.job.redactor.columns
        if not wanted:
            return
        present = {h for header in self.headers.values() for h in header.values()}
        missing = [c for c in wanted if c not in present]
        if missing:
            sheets = len(self.headers)
            raise InvalidInput(f"{self.name}: no column named {', '.join(repr(c) for c in missing)} in the first row "
                               f"of any of its {sheets} sheet(s)", field="columns")

    def rename_sheets(self) -> None:
        """A sheet titled with personal data (a sheet per client, named by IIN) is renamed; references
        in formulas and defined names follow (charts and pivot tables keep the old reference)."""
        taken = {ws.title for ws in self.wb.worksheets + self.wb.chartsheets}
        for ws in self.wb.worksheets + self.wb.chartsheets:
            title = ws.title
            with self.job.place("sheet_titles"):
                redacted = self.job.text(title)
            if redacted == title:
                continue
            taken.discard(title)
            new = _sheet_title(redacted, taken)
            taken.add(new)
            old_headers = self.headers.pop(title, None)
            ws.title = new
            if old_headers is not None:
                self.headers[new] = old_headers
            self.renames[title] = new
        if self.renames:
            self.job.report.notes.append(f"{len(self.renames)} sheet title(s) held personal data and were renamed; "
                                         "references in formulas and names follow, charts and pivot tables do not")

    def redact_sheets(self) -> None:
        columns = self.job.redactor.columns
        for ws in self.wb.worksheets:
            header = self.headers.get(ws.title, {})
            named = {c: columns[h] for c, h in header.items() if h in columns}
            cells = ws._cells
            for key in sorted(cells):
                cell = cells[key]
                if cell.comment is not None:
                    self._comment(cell)
                if cell.hyperlink is not None:
                    self._hyperlink(cell)
                if cell.value is not None:
                    self._cell(cell, named.get(key[1]) if key[0] > 1 else None)
            self._headers_footers(ws)
            self._validations(ws)
        if self.formulas_kept:
            self.job.report.notes.append(f"{self.formulas_kept} formula(s) held personal data in a string literal: "
                                         "the literal was redacted, the formula kept")
        if self.formulas_replaced:
            self.job.report.notes.append(f"{self.formulas_replaced} formula(s) held personal data outside a string "
                                         "literal and were replaced by their redacted text")

    def _cell(self, cell: Any, operator: str | None) -> None:
        from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

        value = cell.value
        if isinstance(value, (ArrayFormula, DataTableFormula)) or cell.data_type == "f":
            self._formula(cell)
            return
        if isinstance(value, bool):
            return
        job = self.job
        if operator is not None:
            with job.place("cells"):
                new = job.whole(value if isinstance(value, str) else _number_text(value), operator)
            _set_text(cell, new)
            return
        if isinstance(value, str):
            with job.place("cells"):
                new = job.text(value)
            if new != value:
                _set_text(cell, new)
        elif isinstance(value, (int, float)):
            text = _number_text(value)
            with job.place("cells"):
                new = job.text(text)
            if new != text:
                _set_text(cell, new)  # a number that is an IIN or a phone becomes the redacted text

    def _formula(self, cell: Any) -> None:
        from openpyxl.worksheet.formula import ArrayFormula

        value = cell.value
        text = value.text if isinstance(value, ArrayFormula) else value
        if not isinstance(text, str):
            return
        text = _retarget(text, self.renames)
        findings = self.job.scanner.scan(text)
        if not findings:
            if isinstance(value, ArrayFormula):
                value.text = text
            elif text != value:
                cell.value = text
            return
        literals = _string_literals(text)
        with self.job.place("formulas"):
            redacted = self.job.redactor.redact_text(text, findings).text
        if all(any(a <= f.start and f.end <= b for a, b in literals) for f in findings):
            self.formulas_kept += 1
            if isinstance(value, ArrayFormula):
                value.text = redacted
            else:
                cell.value = redacted
        else:
            self.formulas_replaced += 1
            _set_text(cell, redacted)

    def _comment(self, cell: Any) -> None:
        comment = cell.comment
        with self.job.place("comments"):
            text = self.job.text(comment.text or "")
            author = self.job.person(comment.author)
        if text != comment.text or author != comment.author:
            comment.text = text
            comment.author = author

    def _hyperlink(self, cell: Any) -> None:
        link = cell.hyperlink
        with self.job.place("hyperlinks"):
            for attr in ("target", "display", "tooltip", "location"):
                value = getattr(link, attr, None)
                if isinstance(value, str) and value:
                    new = self.job.text(value)
                    if new != value:
                        setattr(link, attr, new)

    def _headers_footers(self, ws: Any) -> None:
        for item in (ws.oddHeader, ws.oddFooter, ws.evenHeader, ws.evenFooter, ws.firstHeader, ws.firstFooter):
            for part in (item.left, item.center, item.right):
                if part.text:
                    with self.job.place("headers_footers"):
                        new = self.job.text(part.text)
                    if new != part.text:
                        part.text = new

    def _validations(self, ws: Any) -> None:
        for validation in ws.data_validations.dataValidation:
            for attr in ("formula1", "formula2", "prompt", "error", "promptTitle", "errorTitle"):
                value = getattr(validation, attr, None)
                if isinstance(value, str) and value:
                    with self.job.place("data_validation"):
                        new = self.job.text(_retarget(value, self.renames))
                    if new != value:
                        setattr(validation, attr, new)

    def redact_names(self) -> None:
        scopes = [self.wb.defined_names] + [ws.defined_names for ws in self.wb.worksheets]
        for names in scopes:
            for defined in list(names.values()):
                value = defined.attr_text
                if not isinstance(value, str):
                    continue
                with self.job.place("defined_names"):
                    new = self.job.text(_retarget(value, self.renames))
                if new != value:
                    defined.attr_text = new

    def redact_properties(self) -> None:
        props = self.wb.properties
        with self.job.place("properties"):
            for attr in ("creator", "lastModifiedBy"):
                setattr(props, attr, self.job.person(getattr(props, attr)))
            for attr in ("title", "subject", "description", "keywords", "category", "identifier", "contentStatus"):
                value = getattr(props, attr, None)
                if isinstance(value, str) and value:
                    setattr(props, attr, self.job.text(value))
            for prop in getattr(self.wb, "custom_doc_props", ()):
                value = getattr(prop, "value", None)
                if isinstance(value, str) and value:
                    prop.value = self.job.text(value)


def _set_text(cell: Any, text: Any) -> None:
    """A redacted value as plain text (never re-read as a formula, even when it starts with '=')."""
    if text == "" or text is None:
        cell.value = None
        return
    cell.value = text
    if isinstance(text, str) and text.startswith("="):
        cell.data_type = "s"


def _sheet_title(text: str, taken: set[str]) -> str:
    """A valid, unique sheet title (≤ 31 characters, none of []:*?/\\) from a redacted title."""
    base = text.translate(_BAD_TITLE).strip().strip("'")[:31] or "Sheet"
    title, n = base, 2
    while title in taken:
        suffix = f" ({n})"
        title = base[:31 - len(suffix)] + suffix
        n += 1
    return title


def _retarget(formula: str, renames: dict[str, str]) -> str:
    """``'Old name'!A1`` → ``'New'!A1`` for every renamed sheet."""
    for old, new in renames.items():
        quoted_new = "'" + new.replace("'", "''") + "'!"
        formula = formula.replace("'" + old.replace("'", "''") + "'!", quoted_new)
        if re.fullmatch(r"[^\W\d]\w*", old):
            formula = re.sub(r"(?<![\w.'])" + re.escape(old) + "!", lambda _m: quoted_new, formula)
    return formula


def _string_literals(formula: str) -> list[tuple[int, int]]:
    """Spans (inside the quotes) of a formula's string literals; quoted sheet names are skipped."""
    spans: list[tuple[int, int]] = []
    i, n = 0, len(formula)
    while i < n:
        quote = formula[i]
        if quote not in "\"'":
            i += 1
            continue
        j = i + 1
        while j < n:
            if formula[j] == quote:
                if j + 1 < n and formula[j + 1] == quote:  # "" or '' is an escaped quote
                    j += 2
                    continue
                break
            j += 1
        if quote == '"':
            spans.append((i + 1, j))
        i = j + 1
    return spans


# Parts the openpyxl pass rewrote (or that hold no text) — the package pass leaves them alone.
_XLSX_HANDLED = re.compile(
    r"^(?:\[Content_Types\]\.xml|xl/workbook\.xml|xl/styles\.xml|xl/theme/.*|xl/worksheets/sheet\d+\.xml"
    r"|xl/sharedStrings\.xml|xl/comments/.*|xl/comments\d+\.xml|docProps/core\.xml|docProps/custom\.xml"
    r"|docProps/app\.xml|xl/calcChain\.xml)$")


# --- OOXML packages (shared by XLSX and DOCX) ------------------------------------------------------------------

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W_P = f"{{{W_NS}}}p"
_W_TEXT = {f"{{{W_NS}}}t": "visible", f"{{{W_NS}}}delText": "deleted", f"{{{W_NS}}}instrText": "field",
           f"{{{W_NS}}}delInstrText": "field"}
_W_SEPARATORS = {f"{{{W_NS}}}tab": "\t", f"{{{W_NS}}}br": "\n", f"{{{W_NS}}}cr": "\n",
                 f"{{{W_NS}}}noBreakHyphen": "-"}
_W_SKIP = {f"{{{W_NS}}}pPr", f"{{{W_NS}}}rPr"}  # properties: tab stops there are not text
_W_DEL = f"{{{W_NS}}}del"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
# Attributes that carry a person's name whatever they say; attributes whose values are data to scan.
_PERSON_ATTRS = frozenset({"author", "initials"})
_DATA_ATTRS = frozenset({"v", "n", "displayName", "userId", "descr", "title", "connection", "command",
                         "description", "caption", "instr", "val", "name"})
# Structural attributes never worth scanning (cell references, style ids, revision ids …).
_SKIP_ATTRS = frozenset({"r", "s", "t", "spans", "ref", "sqref", "ht", "dyDescent", "id", "Id", "Type", "uri",
                         "rsidR", "rsidRDefault", "rsidP", "rsidRPr", "rsidSect", "rsidTr", "rsidDel", "paraId",
                         "textId", "durableId", "ContentType", "PartName", "Extension"})
# WordprocessingML elements whose w:val is text someone typed (form field defaults, content controls).
_W_TEXT_VALUES = frozenset({"default", "alias", "tag", "listEntry", "helpText", "statusText", "docVar"})


def _xml_parser() -> Any:
    from lxml import etree

    # No entities, no network, no DTD: a document is data, never instructions to fetch anything.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True,
                           remove_blank_text=False)


def _localname(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _paragraph_streams(p: Any) -> dict[str, list[tuple[Any, str]]]:
    """A paragraph's text as streams (visible, deleted, field code) of (node or None, text) pieces.

    Nested paragraphs (text boxes inside a run) are their own paragraphs and are skipped here;
    separators (tab, break) are text the scanner sees but that no replacement is written into.
    """
    streams: dict[str, list[tuple[Any, str]]] = {}
    stack: list[tuple[Any, bool]] = [(child, False) for child in reversed(p)]
    while stack:
        node, deleted = stack.pop()
        tag = node.tag
        if tag == W_P or tag in _W_SKIP or not isinstance(tag, str):
            continue
        kind = _W_TEXT.get(tag)
        if kind is not None:
            if node.text:
                streams.setdefault(kind, []).append((node, node.text))
            continue
        separator = _W_SEPARATORS.get(tag)
        if separator is not None:
            streams.setdefault("deleted" if deleted else "visible", []).append((None, separator))
            continue
        inside = deleted or tag == _W_DEL
        stack.extend((child, inside) for child in reversed(node))
    return streams


def _redact_paragraph(p: Any, job: _Job) -> None:
    for pieces in _paragraph_streams(p).values():
        text = "".join(t for _, t in pieces)
        if not text.strip():
            continue
        findings = job.scanner.scan(text)
        if not findings:
            continue
        result = job.redactor.redact_text(text, findings)
        _write_back(pieces, [(i.start, i.end, result.text[i.new_start:i.new_end]) for i in result.items])


def _write_back(pieces: list[tuple[Any, str]], edits: list[tuple[int, int, str]]) -> None:
    """Apply (start, end, replacement) edits of the joined text to the pieces' nodes.

    The replacement goes into the first text node the span touches (so it keeps that run's formatting);
    the span's text is removed from every other node it touches. Edits are applied from the last, so
    offsets inside a node stay valid.
    """
    bounds: list[tuple[int, int, Any]] = []
    position = 0
    for node, text in pieces:
        bounds.append((position, position + len(text), node))
        position += len(text)
    texts: dict[int, str] = {id(node): node.text for _, _, node in bounds if node is not None}
    for start, end, replacement in reversed(edits):
        placed = False
        for p_start, p_end, node in bounds:
            if node is None or p_end <= start or p_start >= end:
                continue
            current = texts[id(node)]
            a, b = max(start, p_start) - p_start, min(end, p_end) - p_start
            texts[id(node)] = current[:a] + (replacement if not placed else "") + current[b:]
            placed = True
    for _, _, node in bounds:
        if node is None:
            continue
        new = texts[id(node)]
        if new != node.text:
            node.text = new
            if new != new.strip():
                node.set(_XML_SPACE, "preserve")


def _redact_attributes(root: Any, job: _Job, *, scan_data: bool) -> None:
    """Authors and initials as persons everywhere; data-bearing attributes scanned.

    In WordprocessingML stories (``scan_data=False``) only attributes that hold document text are
    scanned (a simple field's instruction, an image's alt text, a form field's default text, a content
    control's title); in other parts every attribute of :data:`_DATA_ATTRS`.
    """
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        element = _localname(el.tag)
        for key, value in el.attrib.items():
            local = _localname(key)
            if local in _PERSON_ATTRS:
                with job.place("authors"):
                    new = job.person(value)
            elif (local in _DATA_ATTRS if scan_data else
                  local in ("instr", "descr", "title") or (local == "val" and element in _W_TEXT_VALUES)):
                with job.place("attributes"):
                    new = job.text(value)
            else:
                continue
            if new != value:
                el.set(key, new or "")


def _redact_generic(root: Any, job: _Job, place: str) -> None:
    """Any other XML part: paragraphs as streams, every other text node and data attribute scanned."""
    is_rels = _localname(root.tag) == "Relationships"
    if is_rels:
        for el in root:
            if el.get("TargetMode") == "External" and el.get("Target"):
                with job.place("links"):
                    new = job.text(el.get("Target"))
                if new != el.get("Target"):
                    el.set("Target", new)
        return
    for p in root.iter(W_P):
        with job.place(place):
            _redact_paragraph(p, job)
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in _W_TEXT or _inside_paragraph(el):
            continue
        for attr in ("text", "tail"):
            value = getattr(el, attr)
            if value and value.strip():
                with job.place(place):
                    new = job.text(value)
                if new != value:
                    setattr(el, attr, new)
    _redact_attributes(root, job, scan_data=True)


def _inside_paragraph(el: Any) -> bool:
    return el.tag == W_P or next(el.iterancestors(W_P), None) is not None


def _rewrite_package(staged: Path, target: Path, job: _Job, handled: re.Pattern[str]) -> None:
    """Copy a zip package, redacting every XML part ``handled`` does not match (charts' caches, pivot
    caches, drawings, external links, custom XML …); binary parts are copied and counted."""
    from lxml import etree

    images = embedded = 0
    with zipfile.ZipFile(staged) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            name = info.filename
            if not handled.match(name) and _is_xml_part(name):
                try:
                    root = etree.fromstring(data, _xml_parser())
                except etree.XMLSyntaxError:
                    root = None
                if root is not None:
                    before = sum(job.redactor.counts.values())
                    _redact_generic(root, job, "other_parts")
                    if sum(job.redactor.counts.values()) != before:
                        if _localname(root.tag) == "pivotCacheDefinition":
                            root.set("refreshOnLoad", "1")  # the cache is rebuilt from the redacted cells
                        data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
            elif _is_image(name):
                images += 1
            elif "/embeddings/" in name or name.endswith(".bin"):
                embedded += 1
            zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    _note_binaries(job, images, embedded)


def _is_xml_part(name: str) -> bool:
    return name.endswith((".xml", ".rels", ".vml"))


def _is_image(name: str) -> bool:
    return name.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".emf", ".wmf", ".svg"))


def _note_binaries(job: _Job, images: int, embedded: int) -> None:
    if images:
        job.report.notes.append(f"{images} image(s) kept as they are: pictures are not inspected (no OCR)")
    if embedded:
        job.report.notes.append(f"{embedded} embedded object(s) or binary part(s) kept as they are: not inspected")


# --- DOCX ----------------------------------------------------------------------------------------------------------

_STORY_TYPES = frozenset(f"application/vnd.openxmlformats-officedocument.wordprocessingml.{kind}+xml" for kind in (
    "document.main", "template.main", "header", "footer", "footnotes", "endnotes", "comments",
    "document.glossary")) | {"application/vnd.ms-word.document.macroEnabled.main+xml",
                             "application/vnd.ms-word.template.macroEnabledTemplate.main+xml"}
# Presentation parts: fonts, styles, numbering, theme, settings — no document text (verified anyway).
_DOCX_SKIP_TYPES = frozenset(f"application/vnd.openxmlformats-officedocument.{kind}+xml" for kind in (
    "wordprocessingml.styles", "wordprocessingml.fontTable", "wordprocessingml.webSettings",
    "wordprocessingml.numbering", "theme", "wordprocessingml.settings")) | {
    "application/vnd.ms-word.stylesWithEffects+xml", "application/vnd.openxmlformats-package.core-properties+xml"}
_PLACE_OF = {"header": "headers_footers", "footer": "headers_footers", "footnotes": "notes", "endnotes": "notes",
             "comments": "comments"}


def _write_docx(source: Path, target: Path | IO[str], job: _Job, name: str, text_field: str | None) -> None:
    import docx
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from docx.opc.part import XmlPart
    from lxml import etree

    assert isinstance(target, Path)
    try:
        document = docx.Document(str(source))
    except Exception as exc:  # noqa: BLE001 - zipfile, lxml and python-docx errors alike
        raise UnreadableFile(f"{name}: not a readable DOCX document ({type(exc).__name__})", field="file") from None
    package = document.part.package
    images = embedded = 0
    for rid, rel in list(package.rels.items()):
        if rel.reltype == RT.THUMBNAIL:  # a picture of the first page: it shows what was redacted
            del package.rels[rid]
            job.report.notes.append("the thumbnail (a picture of the first page) was removed")
    for part in list(package.iter_parts()):
        content_type = part.content_type
        partname = str(part.partname)
        for rel in part.rels.values():
            if rel.is_external:
                with job.place("links"):
                    new = job.text(rel.target_ref)
                if new != rel.target_ref:
                    rel._target = new  # python-docx keeps an external target as a plain string
        if content_type.startswith("image/"):
            images += 1
            continue
        if "/embeddings/" in partname:
            embedded += 1
            continue
        if content_type in _DOCX_SKIP_TYPES:
            continue
        is_xml = isinstance(part, XmlPart)
        if not is_xml and not (content_type.endswith("xml") or partname.endswith(".xml")):
            embedded += 1
            continue
        if is_xml:
            root = part._element
        else:
            try:
                root = etree.fromstring(part.blob, _xml_parser())
            except etree.XMLSyntaxError:
                embedded += 1
                continue
        if content_type in _STORY_TYPES:
            place = next((v for k, v in _PLACE_OF.items() if f".{k}+xml" in content_type), "body")
            with job.place(place):
                for p in root.iter(W_P):
                    _redact_paragraph(p, job)
            _redact_attributes(root, job, scan_data=False)
        else:
            _redact_generic(root, job, "other_parts")
        if not is_xml:
            part._blob = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
    _redact_core_properties(document.core_properties, job)
    _note_binaries(job, images, embedded)
    try:
        document.save(str(target))
    except ValueError as exc:
        raise UnreadableFile(f"{name}: the document could not be written back ({type(exc).__name__})",
                             field="file") from None


def _redact_core_properties(props: Any, job: _Job) -> None:
    with job.place("properties"):
        for attr in ("author", "last_modified_by"):
            value = getattr(props, attr)
            new = job.person(value)
            if new != value:
                setattr(props, attr, (new or "")[:255])
        for attr in ("title", "subject", "keywords", "comments", "category", "content_status", "identifier"):
            value = getattr(props, attr)
            if isinstance(value, str) and value:
                new = job.text(value)
                if new != value:
                    setattr(props, attr, new[:255])


# --- verification -----------------------------------------------------------------------------------------------


def verify_package(path: Path, verifier: TextScanner, name: str, *, clean: set[str] | frozenset[str] = frozenset()) -> None:
    """Re-scan every XML part of a written XLSX/DOCX; raise :class:`ResidualPersonalData` if anything is left.

    Paragraphs are scanned as a whole (as they were redacted), other text nodes and attribute values one
    by one. Tokens the operators wrote (hashes, ``ENC[…]``, placeholders) are not findings. The parts are
    streamed, so a large sheet is verified in bounded memory. ``clean`` holds texts the redaction's
    scanner examined and found nothing in; coming back unchanged, they are not scanned again — valid when
    the verifier finds a subset of what the scanner finds (the scanner restricted to context-free types,
    as ``qorgau redact`` and the API build it). What was changed, and every place the redaction never
    looked at, is scanned.
    """
    residual: dict[str, Counter[str]] = {}
    with zipfile.ZipFile(path) as package:
        for info in package.infolist():
            if not _is_xml_part(info.filename):
                continue
            found = _verify_part(package, info, verifier, clean)
            if found:
                residual[info.filename] = found
    if residual:
        parts = "; ".join(f"{part} ({', '.join(f'{t} {n}' for t, n in sorted(c.items()))})"
                          for part, c in sorted(residual.items()))
        raise ResidualPersonalData(
            f"{name}: personal data is still present after redaction in {parts}; the output was not written. "
            "These parts are not rewritten by qorgau: remove them from the document (or export the data to "
            "CSV) and redact again", field="file")


def _verify_part(package: zipfile.ZipFile, info: zipfile.ZipInfo, verifier: TextScanner,
                 clean: set[str] | frozenset[str]) -> Counter[str]:
    from lxml import etree

    found: Counter[str] = Counter()
    verifier = _Memo(verifier)

    def check(text: str | None) -> None:
        # Nothing the verifier looks for fits in 3 characters ("0", "true", "22" are most attributes).
        if text and len(text) > 3 and not text.isspace():
            if _DECIMAL.fullmatch(text):
                # A number as the redaction pass read it: openpyxl writes 84947.9 as 84947.89999999999,
                # whose tail digits would otherwise look like a phone number.
                text = _number_text(float(text))
            if text in clean:
                return
            for f in verifier.scan(text):
                if not is_redaction_product(text, f.start, f.end):
                    found[f.type] += 1

    with package.open(info) as stream:
        try:
            for _, el in etree.iterparse(stream, events=("end",), resolve_entities=False, no_network=True,
                                         load_dtd=False, huge_tree=True):
                tag = el.tag
                if tag == W_P:
                    for pieces in _paragraph_streams(el).values():
                        check("".join(t for _, t in pieces))
                    for node in _own_nodes(el):
                        for key, value in node.attrib.items():
                            if _localname(key) not in _SKIP_ATTRS:
                                check(value)
                    if next(el.iterancestors(W_P), None) is None:
                        _release(el)
                    continue
                if next(el.iterancestors(W_P), None) is not None:
                    continue  # its paragraph checks it
                if tag not in _W_TEXT:
                    check(el.text)
                check(el.tail)
                for key, value in el.attrib.items():
                    if _localname(key) not in _SKIP_ATTRS:
                        check(value)
                _release(el)
        except etree.XMLSyntaxError:
            # Not well-formed XML (some legacy VML): scan its text as it is.
            raw = package.read(info).decode("utf-8", "replace")
            check(raw)
    return found


def _own_nodes(p: Any) -> Iterator[Any]:
    """A paragraph and its descendants, without nested paragraphs (checked on their own) and without
    run and paragraph properties (formatting: fonts, sizes, styles)."""
    stack = [p]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child in node if child.tag != W_P and child.tag not in _W_SKIP)


def _release(el: Any) -> None:
    """Free what was checked (iterparse keeps the tree otherwise)."""
    el.clear(keep_tail=False)
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def is_redaction_product(text: str, start: int, end: int) -> bool:
    """True when ``text[start:end]`` is what an operator wrote, not personal data left behind.

    A masked value keeps its shape with ``*`` for every hidden character, and a masked e-mail
    (``a***@gov.kz``) is still a well-formed address to a recognizer; a hash's hex or a ciphertext's
    base64 may contain digit runs. None of them is the value it replaced.
    """
    if "*" in text[start:end]:
        return True
    for m in _REDACTION_TOKEN.finditer(text):
        if m.start() <= start and end <= m.end():
            return True
    return False


_WRITERS: dict[str, Callable[[Path, Any, _Job, str, str | None], None]] = {
    "text": _write_text, "csv": _write_table, "tsv": _write_table, "jsonl": _write_jsonl, "json": _write_json,
    "parquet": _write_parquet, "xlsx": _write_xlsx, "docx": _write_docx, "pdf": _write_pdf_text,
}
_TEXT_WRITERS = {k: _WRITERS[k] for k in ("text", "csv", "tsv", "jsonl", "json")}
