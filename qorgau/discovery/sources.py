"""Where personal data lives: read files, directories, stdin and SQL databases as bounded text chunks.

Every input becomes a :class:`Source` that yields :class:`Chunk` objects — a piece of text plus where it
came from (line, row+column, sheet+cell, page, JSON path, table+column). Reading streams: a 1 GB log
is read line block by line block, a huge line is cut into bounded pieces at whitespace, spreadsheets and
Parquet files are read row by row or batch by batch, databases are *sampled* (``sample_rows`` per
column). Nothing here scans, logs or stores text beyond the chunk being handed over.

A file that cannot be read raises :class:`SourceError` naming the file and the reason (never the
content); chunks yielded before the failure stay valid, and the scan goes on with the next source.
Encodings are detected per file (UTF-8 with or without BOM, UTF-16/32, cp1251 and its Kazakh sibling
KZ-1048, which are common in Kazakhstan's older systems) and recorded on the source.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

# Bounds that keep memory flat whatever the input (characters, not bytes).
BLOCK_CHARS = 256 * 1024  # text lines are grouped into blocks of about this size
MAX_PIECE_CHARS = 1024 * 1024  # a longer line is split into pieces of at most this size
CUT_SEARCH_CHARS = 1024  # how far back from the limit to look for whitespace to cut a huge line at
MAX_CELL_CHARS = MAX_PIECE_CHARS  # a longer cell / JSON string / page is cut the same way
SNIFF_BYTES = 64 * 1024  # sample read for encoding detection and binary sniffing
JSON_DOCUMENT_MAX_BYTES = 64 * 1024 * 1024  # larger .json files are scanned as plain text lines
DEFAULT_SAMPLE_ROWS = 1000
PARQUET_BATCH_ROWS = 4096

TEXT_EXTENSIONS = frozenset({".txt", ".log", ".text", ".md", ".sql", ".xml", ".html", ".htm", ".yaml",
                             ".yml", ".ini", ".conf", ".cfg", ".env", ".properties", ".eml"})
KINDS_BY_EXTENSION = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
                      ".xlsx": "xlsx", ".xlsm": "xlsx", ".docx": "docx", ".pdf": "pdf", ".parquet": "parquet"}
SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle")


# --- the contract ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of text from a source and where it is.

    ``location`` keys by kind: text ``{"line", "column"}`` (the chunk may hold several lines starting at
    ``line``; ``column`` is the 0-based character offset of the chunk's start inside that line, non-zero
    only for the second and later pieces of a huge line); CSV/TSV/Parquet ``{"row", "column"}``; xlsx
    ``{"sheet", "cell", "row", "column"}``; docx ``{"paragraph"}`` or ``{"table", "row", "cell"}``; PDF
    ``{"page"}``; JSON ``{"path"}``; JSON Lines ``{"line", "path"}`` or, with a text field,
    ``{"line", "id", "field"}`` (plus ``"error"`` when the record has no usable text); SQL
    ``{"table", "column", "row"}``. ``offset`` is set when a long cell/string was cut: the character
    offset of this piece inside the cell. ``repr`` never shows the text.
    """

    source: str
    location: dict[str, Any]
    text: str

    def __repr__(self) -> str:
        return f"Chunk({self.source!r} {self.location!r} <{len(self.text)} chars>)"

    @property
    def is_line_block(self) -> bool:
        """Text chunks hold whole lines; findings are re-based to their own line after scanning."""
        return "line" in self.location and "column" in self.location


class SourceError(Exception):
    """A source (or part of it) could not be read. Names the source and the reason, never its content."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple[type[SourceError], tuple[str, str]]:
        return (type(self), (self.source, self.reason))


@dataclass(frozen=True, slots=True)
class Skipped:
    """An input deliberately not scanned (a binary file in a directory), with the reason."""

    source: str
    reason: str


@dataclass
class Source:
    """One input to scan. Iterating yields chunks; ``encoding`` and ``notes`` are filled while reading."""

    name: str
    kind: str
    path: Path | None = None
    url: str | None = None
    text_field: str | None = None
    id_field: str | None = None
    sample_rows: int = DEFAULT_SAMPLE_ROWS
    encoding: str | None = None
    size: int | None = None
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Chunk]:
        reader = _READERS[self.kind]
        try:
            yield from reader(self)
        except SourceError:
            raise
        except PermissionError:
            raise SourceError(self.name, "permission denied") from None
        except FileNotFoundError:
            raise SourceError(self.name, "file not found (removed while scanning?)") from None
        except IsADirectoryError:
            raise SourceError(self.name, "is a directory") from None
        except UnicodeDecodeError as exc:
            raise SourceError(self.name, f"bytes not valid {exc.encoding} ({exc.reason})") from None
        except MemoryError:
            raise SourceError(self.name, "out of memory while reading") from None
        except Exception as exc:  # noqa: BLE001 - third-party readers raise anything on corrupt input
            # The type name only: messages of parsers may quote the content they choke on.
            raise SourceError(self.name, f"cannot read as {self.kind}: {type(exc).__name__}") from None


# --- discovering inputs -----------------------------------------------------------------------------


def is_database_url(spec: str) -> bool:
    """``sqlite:///x.db``, ``postgresql://…``, ``postgresql+psycopg://…`` — a SQLAlchemy URL."""
    scheme, sep, _ = spec.partition("://")
    if not sep:
        return False
    return scheme.split("+", 1)[0].lower() in SQL_SCHEMES


def display_url(url: str) -> str:
    """A database URL as safe to print: the password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is still named, without what follows the scheme
        return url.partition("://")[0] + "://…"


def open_sources(specs: Iterable[str], *, text_field: str | None = None, id_field: str | None = None,
                 sample_rows: int = DEFAULT_SAMPLE_ROWS) -> Iterator[Source | Skipped | SourceError]:
    """Every input named by ``specs`` (paths, directories walked recursively, ``-`` for stdin, DB URLs).

    Yields a :class:`Source` to read, a :class:`Skipped` note for binaries found while walking, or a
    :class:`SourceError` for a path that cannot even be opened. Order is deterministic (sorted walk).
    """
    options = {"text_field": text_field, "id_field": id_field, "sample_rows": sample_rows}
    for spec in specs:
        if spec == "-":
            # With a text field, stdin is JSON Lines records (the contract); otherwise plain text.
            yield Source(name="<stdin>", kind="stdin-jsonl" if text_field else "stdin", **options)
        elif is_database_url(spec):
            yield Source(name=display_url(spec), kind="sql", url=spec, **options)
        else:
            yield from _open_path(Path(spec), explicit=True, options=options)


def _open_path(path: Path, *, explicit: bool, options: dict[str, Any]) -> Iterator[Source | Skipped | SourceError]:
    name = str(path)
    try:
        st = path.stat()
    except PermissionError:
        yield SourceError(name, "permission denied")
        return
    except OSError:
        yield SourceError(name, "no such file or directory")
        return
    if stat.S_ISDIR(st.st_mode):
        yield from _walk(path, options)
        return
    if not stat.S_ISREG(st.st_mode):
        if explicit and stat.S_ISFIFO(st.st_mode):  # a named pipe given on purpose: read it as text
            yield Source(name=name, kind="text", path=path, **options)
        else:
            yield Skipped(name, "not a regular file")
        return
    kind = KINDS_BY_EXTENSION.get(path.suffix.lower())
    if kind is None:
        kind = _sniff_kind(path)
        if kind is None:
            yield Skipped(name, "binary file (no text encoding detected)")
            return
        if isinstance(kind, SourceError):
            yield kind
            return
    yield Source(name=name, kind=kind, path=path, size=st.st_size, **options)


def _walk(root: Path, options: dict[str, Any]) -> Iterator[Source | Skipped | SourceError]:
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=False):
        dirnames.sort()
        for error in errors:
            yield SourceError(str(error.filename or dirpath), "cannot list directory: permission denied"
                              if isinstance(error, PermissionError) else "cannot list directory")
        errors.clear()
        for filename in sorted(filenames):
            yield from _open_path(Path(dirpath) / filename, explicit=False, options=options)
    for error in errors:
        yield SourceError(str(error.filename or root), "cannot list directory")


def _sniff_kind(path: Path) -> str | SourceError | None:
    """Text or binary, for files without a known extension: decide from the first bytes."""
    try:
        with path.open("rb") as fh:
            sample = fh.read(SNIFF_BYTES)
    except PermissionError:
        return SourceError(str(path), "permission denied")
    except OSError as exc:
        return SourceError(str(path), f"cannot read ({type(exc).__name__})")
    if path.suffix.lower() in TEXT_EXTENSIONS and not sample:
        return "text"
    return "text" if detect_encoding(sample) is not None else None


# --- encodings --------------------------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Bytes that are Kazakh letters in KZ-1048 (қ ә ң ұ һ) but rare Macedonian/Serbian/Belarusian letters in
# cp1251 (ќ ј ѕ ў ћ): their presence in Cyrillic text means the file was written in KZ-1048.
_KZ1048_MARKERS = frozenset(b"\x8d\x9d\xbc\xa3\xbd\xbe\xa1\xa2\x8e\x9e")
_CONTROL_BYTES = frozenset(range(0, 32)) - {9, 10, 12, 13, 27}


def detect_encoding(sample: bytes) -> str | None:
    """The encoding of a file from its first bytes, or ``None`` when it looks binary.

    Order: BOM; valid UTF-8; UTF-16 without BOM (NUL bytes on one side); cp1251/KZ-1048 when the
    non-ASCII bytes decode to Cyrillic letters; then charset-normalizer's best guess.
    """
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    if not sample:
        return "utf-8"
    if b"\x00" in sample:  # text has no NUL bytes, except UTF-16 (where ASCII letters are half NULs)
        return _utf16_without_bom(sample)
    if _is_utf8(sample):
        return None if _looks_binary(sample) else "utf-8"
    if _looks_binary(sample):
        return None
    if _mostly_cyrillic_in_cp1251(sample):
        return "kz1048" if any(b in _KZ1048_MARKERS for b in sample) else "cp1251"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    return None if best is None else best.encoding


def _is_utf8(sample: bytes) -> bool:
    # The sample may end in the middle of a multi-byte character: allow up to 3 trailing bytes to be cut.
    for cut in range(4):
        try:
            sample[: len(sample) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError as exc:
            if exc.start < len(sample) - 4:
                return False
    return False


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample[:4096] if b in _CONTROL_BYTES)
    return controls > max(4, len(sample[:4096]) // 100)


def _utf16_without_bom(sample: bytes) -> str | None:
    even, odd = sample[0::2], sample[1::2]
    if len(sample) < 4:
        return None
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        name = "utf-16-le"
    elif even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        name = "utf-16-be"
    else:
        return None
    try:
        sample[: len(sample) // 2 * 2 - 2].decode(name)
    except UnicodeDecodeError:
        return None
    return name


def _mostly_cyrillic_in_cp1251(sample: bytes) -> bool:
    high = [b for b in sample if b >= 0x80]
    # 0xC0–0xFF are А–я in cp1251; 0xA8/0xB8 Ё/ё; the KZ-1048 markers are Kazakh letters.
    cyrillic = sum(1 for b in high if b >= 0xC0 or b in (0xA8, 0xB8) or b in _KZ1048_MARKERS)
    return bool(high) and cyrillic >= 0.9 * len(high)


class _Prefixed(io.RawIOBase):
    """A raw stream that first serves bytes already read for detection, then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = memoryview(head)
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head.nbytes:
            n = min(len(buffer), self._head.nbytes)
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _open_text(source: Source, raw: BinaryIO, *, newline: str | None = None) -> tuple[io.TextIOWrapper, str]:
    """Detect the encoding from the first bytes and wrap a strict text reader; also the decoded head."""
    sample = raw.read(SNIFF_BYTES)
    encoding = detect_encoding(sample)
    if encoding is None:
        raise SourceError(source.name, "binary content (no text encoding detected)")
    source.encoding = encoding
    stream = io.TextIOWrapper(io.BufferedReader(_Prefixed(sample, raw), SNIFF_BYTES), encoding=encoding,
                              errors="strict", newline=newline)
    return stream, sample[:8192].decode(encoding, errors="ignore")


# --- plain text -------------------------------------------------------------------------------------


def _read_text(source: Source) -> Iterator[Chunk]:
    assert source.path is not None
    with source.path.open("rb") as raw:
        yield from _text_chunks(source, _open_text(source, raw)[0])


def _read_stdin(source: Source) -> Iterator[Chunk]:
    yield from _text_chunks(source, _open_text(source, sys.stdin.buffer)[0])


def _read_stdin_jsonl(source: Source) -> Iterator[Chunk]:
    yield from _jsonl_chunks(source, _open_text(source, sys.stdin.buffer)[0])


def _text_chunks(source: Source, stream: io.TextIOBase) -> Iterator[Chunk]:
    """Blocks of whole lines (about ``BLOCK_CHARS``); lines longer than ``MAX_PIECE_CHARS`` in pieces."""
    name = source.name
    block: list[str] = []
    block_chars = 0
    block_line, block_column = 1, 0
    line_no, column = 1, 0  # where the next piece read starts
    carry = ""
    try:
        while True:
            piece = carry + stream.readline(MAX_PIECE_CHARS - len(carry))
            carry = ""
            if not piece:
                break
            ends_line = piece.endswith("\n")
            if not ends_line and len(piece) >= MAX_PIECE_CHARS:
                piece, carry = _cut_at_space(piece)
            if block and (block_chars + len(piece) > BLOCK_CHARS or column or not ends_line):
                yield Chunk(name, {"line": block_line, "column": block_column}, "".join(block))
                block, block_chars = [], 0
            if not block:
                block_line, block_column = line_no, column
            block.append(piece)
            block_chars += len(piece)
            if ends_line:
                line_no, column = line_no + 1, 0
            else:
                column += len(piece)
                # A piece of a huge line goes out alone so the next piece's column is exact.
                yield Chunk(name, {"line": block_line, "column": block_column}, "".join(block))
                block, block_chars = [], 0
    except UnicodeDecodeError as exc:
        raise SourceError(name, f"bytes near line {line_no} are not valid {source.encoding} ({exc.reason})") from None
    if block:
        yield Chunk(name, {"line": block_line, "column": block_column}, "".join(block))


def _cut_at_space(piece: str) -> tuple[str, str]:
    """Cut a too-long piece at the last whitespace near its end, so no token is split in two."""
    low = max(0, len(piece) - CUT_SEARCH_CHARS)
    for i in range(len(piece) - 1, low - 1, -1):
        if piece[i].isspace():
            return piece[: i + 1], piece[i + 1:]
    return piece, ""


def _cell_pieces(text: str) -> Iterator[tuple[int, str]]:
    """A cell/string/page split into bounded pieces: (offset inside the value, piece)."""
    if len(text) <= MAX_CELL_CHARS:
        yield 0, text
        return
    offset = 0
    while offset < len(text):
        piece = text[offset: offset + MAX_CELL_CHARS]
        if offset + len(piece) < len(text):
            piece, _ = _cut_at_space(piece)
        yield offset, piece
        offset += len(piece)


def _cell_chunks(name: str, location: dict[str, Any], text: str) -> Iterator[Chunk]:
    for offset, piece in _cell_pieces(text):
        yield Chunk(name, location if offset == 0 else {**location, "offset": offset}, piece)


# --- tables: CSV / TSV / xlsx / Parquet -------------------------------------------------------------


def _read_csv(source: Source) -> Iterator[Chunk]:
    assert source.path is not None
    delimiter = "\t" if source.kind == "tsv" else None
    with source.path.open("rb") as raw:
        stream, head = _open_text(source, raw, newline="")
        if delimiter is None:
            delimiter = _guess_delimiter(head)
        csv.field_size_limit(MAX_CELL_CHARS * 16)
        reader = csv.reader(stream, delimiter=delimiter)
        header: list[str] = []
        row_no = 0
        try:
            for row_no, row in enumerate(reader, start=1):
                if row_no == 1:
                    header = [h.strip().lstrip("\ufeff") for h in row]
                    # Header names can be personal data too (a column named after a person is rare, but
                    # a pivoted sheet has IINs as headers): scan them, location row 1.
                for i, cell in enumerate(row):
                    if not cell or cell.isspace():
                        continue
                    column = header[i] if i < len(header) and header[i] else f"#{i + 1}"
                    yield from _cell_chunks(source.name, {"row": row_no, "column": column}, cell)
        except csv.Error as exc:
            raise SourceError(source.name, f"malformed CSV near row {row_no + 1}: {_csv_reason(exc)}") from None
        except UnicodeDecodeError as exc:
            raise SourceError(source.name, f"bytes near row {row_no + 1} are not valid {source.encoding} "
                                           f"({exc.reason})") from None


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    # csv's messages are about structure ("field larger than field limit", "line contains NUL"), not content.
    return text if len(text) < 80 else "malformed row"


def _guess_delimiter(head: str) -> str:
    first = head.splitlines()[0] if head else ""
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_xlsx(source: Source) -> Iterator[Chunk]:
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    assert source.path is not None
    workbook = load_workbook(source.path, read_only=True, data_only=True)
    try:
        for sheet in workbook.worksheets:
            header: list[str] = []
            for row_no, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                if row_no == 1:
                    header = [_cell_text(v).strip() for v in row]
                for i, value in enumerate(row):
                    text = _cell_text(value)
                    if not text or text.isspace():
                        continue
                    letter = get_column_letter(i + 1)
                    column = header[i] if i < len(header) and header[i] else letter
                    location = {"sheet": sheet.title, "cell": f"{letter}{row_no}", "row": row_no, "column": column}
                    yield from _cell_chunks(source.name, location, text)
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    """A cell as text. Integral floats lose their ``.0`` (Excel stores an IIN typed as a number as float)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, bytes):
        return ""  # binary cells (BLOBs) are not text
    return str(value)


def _read_parquet(source: Source) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert source.path is not None
    parquet = pq.ParquetFile(source.path)
    wanted = [f.name for f in parquet.schema_arrow
              if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_integer(f.type)
              or pa.types.is_dictionary(f.type)]
    skipped = len(parquet.schema_arrow) - len(wanted)
    if skipped:
        source.notes.append(f"{skipped} non-text column(s) not scanned")
    if not wanted:
        return
    row_base = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
        yield from _batch_chunks(source.name, batch.to_pydict(), row_base)
        row_base += batch.num_rows


def _batch_chunks(name: str, columns: dict[str, list[Any]], row_base: int) -> Iterator[Chunk]:
    names = list(columns)
    if not names:
        return
    rows = len(columns[names[0]])
    for r in range(rows):
        for column in names:
            text = _cell_text(columns[column][r])
            if text and not text.isspace():
                yield from _cell_chunks(name, {"row": row_base + r + 1, "column": column}, text)


# --- documents: docx / pdf --------------------------------------------------------------------------


def _read_docx(source: Source) -> Iterator[Chunk]:
    import docx

    assert source.path is not None
    document = docx.Document(str(source.path))
    for p_no, paragraph in enumerate(document.paragraphs, start=1):
        if paragraph.text.strip():
            yield from _cell_chunks(source.name, {"paragraph": p_no}, paragraph.text)
    for t_no, table in enumerate(document.tables, start=1):
        for r_no, row in enumerate(table.rows, start=1):
            seen: set[int] = set()
            for c_no, cell in enumerate(row.cells, start=1):
                if id(cell._tc) in seen:  # merged cells repeat the same element
                    continue
                seen.add(id(cell._tc))
                if cell.text.strip():
                    yield from _cell_chunks(source.name, {"table": t_no, "row": r_no, "cell": c_no}, cell.text)
    for s_no, section in enumerate(document.sections, start=1):
        for part_name, part in (("header", section.header), ("footer", section.footer)):
            if part.is_linked_to_previous:
                continue
            text = "\n".join(p.text for p in part.paragraphs)
            if text.strip():
                yield from _cell_chunks(source.name, {"section": s_no, "part": part_name}, text)


def _read_pdf(source: Source) -> Iterator[Chunk]:
    from pypdf import PdfReader

    assert source.path is not None
    reader = PdfReader(str(source.path))
    if reader.is_encrypted:
        try:
            if not reader.decrypt(""):
                raise SourceError(source.name, "encrypted PDF (password needed)")
        except SourceError:
            raise
        except Exception:  # noqa: BLE001
            raise SourceError(source.name, "encrypted PDF (unsupported encryption)") from None
    empty = 0
    for page_no, page in enumerate(reader.pages, start=1):
        text = page.extract_text() or ""
        if not text.strip():
            empty += 1
            continue
        yield from _cell_chunks(source.name, {"page": page_no}, text)
    if empty:
        source.notes.append(f"{empty} page(s) without extractable text (scanned images are not OCR'd)")


# --- JSON / JSON Lines ------------------------------------------------------------------------------


def _read_json(source: Source) -> Iterator[Chunk]:
    assert source.path is not None
    if source.size is not None and source.size > JSON_DOCUMENT_MAX_BYTES:
        source.notes.append("JSON document too large to parse in memory; scanned as text lines")
        yield from _read_text(source)
        return
    with source.path.open("rb") as raw:
        stream, _ = _open_text(source, raw)
        try:
            document = json.load(stream)
        except json.JSONDecodeError as exc:
            raise SourceError(source.name, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    for path, text in _json_strings(document, "$"):
        yield from _cell_chunks(source.name, {"path": path}, text)


def _json_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(JSONPath, text) for every string and integer leaf, and for object keys (a dict keyed by IIN).

    A key with digits or ``@`` may itself be personal data, so it never goes into a path: it is named
    by its position (``$.by_iin[#0]``) and scanned as text at ``…[#0]#key``.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:  # iterative: deeply nested documents must not hit the recursion limit
        node, where = stack.pop()
        if isinstance(node, dict):
            named = [(_key_path(where, key, i), key, child) for i, (key, child) in enumerate(node.items())]
            for child_path, _, child in reversed(named):
                stack.append((child, child_path))
            for child_path, key, _ in named:
                if child_path.endswith("]") and "[#" in child_path[len(where):]:
                    yield child_path + "#key", key
        elif isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                stack.append((node[i], f"{where}[{i}]"))
        elif isinstance(node, str):
            if node.strip():
                yield where, node
        elif isinstance(node, int) and not isinstance(node, bool):
            yield where, str(node)


def _key_path(where: str, key: str, position: int) -> str:
    if any(ch.isdigit() or ch == "@" for ch in key):
        return f"{where}[#{position}]"
    if key.isidentifier() and key.isascii():
        return f"{where}.{key}"
    return f"{where}[{json.dumps(key, ensure_ascii=False)}]"


def _read_jsonl(source: Source) -> Iterator[Chunk]:
    assert source.path is not None
    with source.path.open("rb") as raw:
        yield from _jsonl_chunks(source, _open_text(source, raw)[0])


def _jsonl_chunks(source: Source, stream: io.TextIOBase) -> Iterator[Chunk]:
    name, text_field, id_field = source.name, source.text_field, source.id_field
    line_no = 0
    try:
        for line_no, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                # One bad record does not hide the rest of the file: reported, and reading goes on.
                error = f"line {line_no}: invalid JSON ({exc.msg} at column {exc.colno})"
                location = {"line": line_no, "id": None, "field": text_field} if text_field else {"line": line_no}
                yield Chunk(name, {**location, "error": error}, "")
                continue
            if text_field is None:
                for path, text in _json_strings(record, "$"):
                    yield from _cell_chunks(name, {"line": line_no, "path": path}, text)
                continue
            yield _record_chunk(name, line_no, record, text_field, id_field)
    except UnicodeDecodeError as exc:
        raise SourceError(name, f"bytes after line {line_no} are not valid {source.encoding} ({exc.reason})") from None


def _record_chunk(name: str, line_no: int, record: Any, text_field: str, id_field: str | None) -> Chunk:
    """One chunk per record for the JSON Lines contract: the whole text field, never cut (offsets stay exact)."""
    if not isinstance(record, dict):
        return Chunk(name, {"line": line_no, "id": None, "field": text_field,
                            "error": f"line {line_no}: record is not a JSON object"}, "")
    record_id = record.get(id_field) if id_field else line_no
    location: dict[str, Any] = {"line": line_no, "id": record_id, "field": text_field}
    text = record.get(text_field)
    if text_field not in record:
        return Chunk(name, {**location, "error": f"line {line_no}: no field {text_field!r}"}, "")
    if not isinstance(text, str):
        kind = "null" if text is None else type(text).__name__
        return Chunk(name, {**location, "error": f"line {line_no}: field {text_field!r} is {kind}, not a string"}, "")
    return Chunk(name, location, text)


# --- SQL databases ----------------------------------------------------------------------------------


def _read_sql(source: Source) -> Iterator[Chunk]:
    from sqlalchemy import MetaData, Table, create_engine, inspect, select
    from sqlalchemy.exc import SQLAlchemyError

    assert source.url is not None
    url = source.url
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        engine = create_engine(url)
    except Exception as exc:  # noqa: BLE001 - messages may echo the URL with its password
        raise SourceError(source.name, f"cannot open database ({type(exc).__name__})") from None
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            tables = sorted(inspector.get_table_names())
            metadata = MetaData()
            for table_name in tables:
                try:
                    table = Table(table_name, metadata, autoload_with=conn)
                except SQLAlchemyError as exc:
                    source.notes.append(f"table {table_name}: not reflected ({type(exc).__name__})")
                    continue
                for column in table.columns:
                    query = select(column).where(column.is_not(None)).limit(source.sample_rows)
                    try:
                        rows = conn.execute(query)
                    except SQLAlchemyError as exc:
                        source.notes.append(f"{table_name}.{column.name}: not sampled ({type(exc).__name__})")
                        conn.rollback()
                        continue
                    for row_no, (value,) in enumerate(rows, start=1):
                        text = _cell_text(value)
                        if text and not text.isspace():
                            yield from _cell_chunks(source.name, {"table": table_name, "column": column.name,
                                                                  "row": row_no}, text)
    except SQLAlchemyError as exc:
        raise SourceError(source.name, f"database error ({type(exc).__name__})") from None
    finally:
        engine.dispose()


_READERS = {"text": _read_text, "stdin": _read_stdin, "stdin-jsonl": _read_stdin_jsonl, "csv": _read_csv, "tsv": _read_csv, "xlsx": _read_xlsx,
            "parquet": _read_parquet, "docx": _read_docx, "pdf": _read_pdf, "json": _read_json,
            "jsonl": _read_jsonl, "sql": _read_sql}
