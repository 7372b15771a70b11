"""Split a dataset into the data itself and the identities (L-PD-SPLIT), and join it back.

``split`` reads a CSV/TSV, JSON Lines, Parquet file or a SQL table, moves every *identifying* column
into the identity vault (:meth:`qorgau.vault.service.Vault.tokenize_many`, in batches) and writes the
dataset again with one **pseudonym** column in their place plus the *data itself* columns, untouched.
A **manifest** (JSON) says what moved where; it never holds a value. ``join_back`` re-identifies such a
dataset for a stated purpose (:meth:`~qorgau.vault.service.Vault.detokenize_many`, audited), putting the
identifying columns back where they were.

How the split works
-------------------
1. **Plan.** The first ``sample_rows`` rows are read and every column is classified by
   :func:`qorgau.discovery.columns.classify_column` (its name in kk/ru/en and its sampled values), unless
   ``columns`` names it explicitly (``iin=KZ_IIN,fio=PERSON,diagnosis=keep,notes=drop``). Identifying
   columns with an identifier type go to the vault; ``keep`` columns (the data itself, special categories
   included) are written as they are; ``drop`` columns are left out and stored nowhere. An identifying
   column without an identifier type (``login``, ``imei``) stops the run until it is mapped explicitly:
   guessing would either leak it or lose it. A row is one person: the identifying cells of a row are one
   :class:`~qorgau.vault.service.SubjectRecord`, and more than one IIN/passport/ID-card column (two
   people in a row) is refused unless mapped explicitly.
2. **Stream.** Rows are read in batches of ``batch_size`` (memory is flat in the input size). Each
   batch is tokenized in one vault call; each row's pseudonym (``ps_`` + 26 letters) replaces its
   identifying cells.
3. **Bad rows** never stop the run and never leak a value; they are listed in the manifest by row
   number, column and reason:

   * an *invalid identifier* (a bad IIN checksum, a phone that is no phone): without ``keep_invalid`` the
     row is kept out of the vault and **still written, with an empty pseudonym** and its data-itself
     cells. Its identifying values go nowhere (not to the output, not to the vault), so the data rows
     stay complete for statistics while nothing identifying leaks; the manifest tells the operator which
     source rows to fix. With ``keep_invalid`` the vault stores them marked invalid and the row gets a
     pseudonym like any other.
   * a *malformed row* (a CSV row with a different number of cells than the header, a JSON Lines line
     that is not an object, an identifying field holding a nested value) is **left out of the output**:
     its cells cannot be told apart safely.
   * a row whose identifying cells are all empty is written with an empty pseudonym (counted, not a
     problem).
4. **Finish.** The output is moved into place atomically and the manifest written; one ``vault.split``
   audit entry records the counts.

Checkpoints: a crash loses nothing and duplicates nothing
---------------------------------------------------------
Work in progress lives in a state directory next to the output (``.<output name>.qorgau-split``):
``state.json`` (the plan, written once, atomically), the partial output (``data.partial`` for CSV and
JSON Lines; one Parquet file per batch under ``parts/`` for Parquet) and ``problems.jsonl``.
Each batch runs **inside one database transaction**:

  a. ``tokenize_checked`` creates or finds the batch's subjects (not yet committed; the identifiers were
     validated by ``check_records`` — in a worker process for large inputs, one batch ahead);
  b. the batch's output rows and problems are appended to the partial files, flushed and ``fsync``-ed;
  c. a ``vault.split.batch`` audit entry records the checkpoint — rows done, output size (bytes or
     parts), problems size and the running counts;
  d. commit.

The checkpoint is committed *with* the subjects it covers, so the two can never disagree: a crash
before (d) rolls the vault back and leaves at most a torn tail in the partial files; a crash after (d)
finds its output already on disk (b happened first). ``resume`` reads the last committed checkpoint
from the audit log, truncates the partial files to the sizes it recorded (deleting later Parquet parts),
and continues with the next row. Each input row is therefore written exactly once, in order, and each
identity is tokenized in exactly one committed transaction (the vault is also idempotent per lookup
value, which keeps a batch re-run after a crash from creating a second subject even if it were
replayed). Resuming checks that the input is the same (SHA-256 of a file, or a chained digest of the
rows read so far from a SQL table) and that the options are unchanged.

Formats. CSV/TSV (encoding detected like discovery's sources: UTF-8/16, cp1251, KZ-1048; the output is
UTF-8 with the same delimiter), JSON Lines (records keep their other fields and key order), Parquet
(columns keep their Arrow types; the original schema is kept in the manifest so join-back restores
integer IINs or date-typed birth dates as they were). A SQL table (SQLAlchemy URL + ``table``, optional
``where``) is read in primary-key order and written as a **Parquet** (types kept) or **CSV** file — never
back into a database, so the split dataset can leave the system that holds the identities.

Nothing here logs, prints or raises with a value: messages name the file, row, line and column.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import gc
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import string
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidInput, QorgauError

if TYPE_CHECKING:
    from ..core.auth import Principal
    from ..core.platform import Platform

__all__ = [
    "DatasetError",
    "JoinReport",
    "SplitReport",
    "join_back",
    "open_dataset",
    "parse_columns_map",
    "split",
]

MANIFEST_VERSION = 1
DEFAULT_BATCH_SIZE = 2000
DEFAULT_SAMPLE_ROWS = 500
MAX_PROBLEMS_IN_MANIFEST = 100_000  # beyond this the manifest counts them only
PARQUET_ROW_GROUP_ROWS = 65_536
SNIFF_BYTES = 64 * 1024
CSV_FIELD_LIMIT = 16 * 1024 * 1024
ACTION_BATCH = "vault.split.batch"
ACTION_SPLIT = "vault.split"
ACTION_JOIN = "vault.join_back"
STATE_SUFFIX = ".qorgau-split"

FORMAT_BY_EXTENSION = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
                       ".pq": "parquet"}
# Identifier types whose values are fixed-width digit strings: an integer-typed column lost their leading
# zeros (an IIN born in 2006 is 061211600012), which are put back.
DIGIT_WIDTH = {"KZ_IIN": 12, "KZ_BIN": 12, "KZ_ID_CARD": 9}
# More than one column of these in a row means two people in a row (sender and recipient).
ONE_PER_PERSON = frozenset({"KZ_IIN", "KZ_PASSPORT", "KZ_ID_CARD"})
KEEP, DROP, VAULT = "keep", "drop", "vault"


class DatasetError(InvalidInput):
    """A dataset that cannot be read or written as asked. Names the file, row, line or column, never a value."""

    code = "invalid_dataset"


# --- values -------------------------------------------------------------------------------------------


def _letters(count: int = 26) -> str:
    """A random id of lowercase letters only: it never trips the audit log's digit-pattern guard."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(count))


def _as_letters(hex_digest: str) -> str:
    """A hex digest spelled with the letters a–p, for audit details (hex digits can look like an IIN)."""
    return hex_digest.translate(_HEX_TO_LETTERS)


_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def _wide(n: int) -> list[int]:
    """A count or byte size as ``[high, low]`` below 10⁹ each: an 11-digit size could read as a phone number
    to the audit log's personal-data guard."""
    return list(divmod(int(n), 10**9))


def _unwide(value: Any) -> int:
    return int(value[0]) * 10**9 + int(value[1]) if isinstance(value, list) else int(value)


def _cell_text(value: Any, entity_type: str | None = None) -> str | None:
    """A cell as the text the vault receives, or None when empty. Integers regain fixed-width zeros."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
        width = DIGIT_WIDTH.get(entity_type or "")
        return text.zfill(width) if width and value >= 0 and len(text) < width else text
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return _cell_text(int(value), entity_type) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return None  # bytes, nested structures: not text the vault can hold (the caller reports it)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, date, Decimal)) and not isinstance(value, bool)


def _looks_like_personal_data(name: str) -> bool:
    """A column name or JSON key that is itself an identifier (pivoted data: a column per IIN)."""
    from ..discovery.columns import value_type

    return value_type(name) is not None


# --- reading datasets ---------------------------------------------------------------------------------


@dataclass
class Batch:
    """Rows ``start`` … ``start + len(rows) - 1`` (0-based) of a dataset, in the reader's own shape.

    ``rows``: CSV → list of cells; JSON Lines → dict (or None for a malformed line); Parquet/SQL → a
    ``pyarrow.RecordBatch`` in ``table``. ``lines`` are 1-based line numbers where known (CSV, JSON Lines).
    ``bad`` maps a position in the batch to why that row is malformed.
    """

    start: int
    size: int
    rows: list[Any] = field(default_factory=list)
    table: Any = None
    lines: list[int] | None = None
    bad: dict[int, str] = field(default_factory=dict)


class Dataset:
    """An input dataset: columns, a fingerprint, and batches from any row on."""

    kind: str = ""
    name: str = ""
    columns: list[str]

    def batches(self, size: int, start: int = 0) -> Iterator[Batch]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name}

    def sample(self, n: int) -> dict[str, list[Any]]:
        """Up to ``n`` values per column from the first rows (malformed rows skipped)."""
        out: dict[str, list[Any]] = {c: [] for c in self.columns}
        with contextlib.closing(self.batches(min(max(n, 1), 10_000))) as batches:
            for batch in batches:
                for name, values in self._columns_of(batch).items():
                    out.setdefault(name, []).extend(values)
                break
        return {k: v[:n] for k, v in out.items()}

    def _columns_of(self, batch: Batch) -> dict[str, list[Any]]:  # pragma: no cover - abstract
        raise NotImplementedError


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _FileDataset(Dataset):
    path: Path

    def fingerprint(self) -> dict[str, Any]:
        st = self.path.stat()
        return {"sha256": _sha256_file(self.path), "bytes": st.st_size}


def _detect_encoding(path: Path) -> str:
    from ..discovery.sources import detect_encoding

    with path.open("rb") as fh:
        sample = fh.read(SNIFF_BYTES)
    encoding = detect_encoding(sample)
    if encoding is None:
        raise DatasetError(f"{path}: binary content, not a text table", field="input")
    return encoding


def _guess_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvDataset(_FileDataset):
    """A CSV/TSV file: a header row, then one record per row (quoted cells may span lines)."""

    kind = "csv"

    def __init__(self, path: Path, *, delimiter: str | None = None) -> None:
        self.path = path
        self.name = str(path)
        self.encoding = _detect_encoding(path)
        with self._open() as fh:
            head = fh.read(8192)
        if delimiter is None:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else _guess_delimiter(head.split("\n", 1)[0])
        self.delimiter = delimiter
        with self._open() as fh:
            try:
                header = next(csv.reader(fh, delimiter=delimiter), None)
            except csv.Error:
                raise DatasetError(f"{path}: line 1: malformed CSV header", field="input") from None
        if not header:
            raise DatasetError(f"{path}: empty file (no header row)", field="input")
        self.columns = _checked_header([h.strip() for h in header], path)

    def _open(self) -> io.TextIOWrapper:
        return open(self.path, encoding=self.encoding, newline="", errors="strict")  # noqa: SIM115

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "encoding": self.encoding, "delimiter": self.delimiter}

    def batches(self, size: int, start: int = 0) -> Iterator[Batch]:
        csv.field_size_limit(CSV_FIELD_LIMIT)
        width = len(self.columns)
        with self._open() as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            index = 0
            batch = Batch(start=start, size=0, lines=[])
            last_line = 0
            try:
                next(reader, None)
                last_line = reader.line_num
                for row in reader:
                    line = last_line + 1
                    last_line = reader.line_num
                    if not row:
                        continue  # a blank line is not a record
                    if index >= start:
                        if len(row) != width:
                            batch.bad[batch.size] = f"{len(row)} cells, the header has {width}"
                        batch.rows.append(row)
                        batch.lines.append(line)  # type: ignore[union-attr]
                        batch.size += 1
                        if batch.size == size:
                            yield batch
                            batch = Batch(start=index + 1, size=0, lines=[])
                    index += 1
            except csv.Error as exc:
                reason = str(exc) if len(str(exc)) < 80 else "malformed row"
                raise DatasetError(f"{self.path}: line {last_line + 1}: malformed CSV ({reason})",
                                   field="input") from None
            except UnicodeDecodeError as exc:
                raise DatasetError(f"{self.path}: after line {last_line}: bytes not valid {self.encoding} "
                                   f"({exc.reason})", field="input") from None
            if batch.size:
                yield batch

    def _columns_of(self, batch: Batch) -> dict[str, list[Any]]:
        rows = [r for i, r in enumerate(batch.rows) if i not in batch.bad]
        return {c: [r[i] for r in rows] for i, c in enumerate(self.columns)}


def _checked_header(header: list[str], path: Path | str) -> list[str]:
    seen: set[str] = set()
    for i, name in enumerate(header, start=1):
        if not name:
            raise DatasetError(f"{path}: column {i} has no name in the header", field="input")
        if name in seen:
            raise DatasetError(f"{path}: column {i}: the name {name!r} appears twice in the header", field="input")
        if _looks_like_personal_data(name):
            raise DatasetError(f"{path}: column {i}: the header itself holds personal data (pivoted table?)",
                               field="input")
        seen.add(name)
    return header


class JsonlDataset(_FileDataset):
    """JSON Lines: one object per line. Columns are the keys of the first records, in order of appearance."""

    kind = "jsonl"

    def __init__(self, path: Path, *, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> None:
        self.path = path
        self.name = str(path)
        self.encoding = _detect_encoding(path)
        keys: dict[str, None] = {}
        with contextlib.closing(self.batches(max(sample_rows, 1))) as batches:
            for batch in batches:
                for i, record in enumerate(batch.rows):
                    if i not in batch.bad:
                        keys.update(dict.fromkeys(record))
                break
        for key in keys:
            if _looks_like_personal_data(key):
                raise DatasetError(f"{path}: a field name holds personal data (records keyed by identifier?)",
                                   field="input")
        self.columns = list(keys)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "encoding": self.encoding}

    def batches(self, size: int, start: int = 0) -> Iterator[Batch]:
        index = 0
        batch = Batch(start=start, size=0, lines=[])
        line_no = 0
        with open(self.path, encoding=self.encoding, errors="strict", newline=None) as fh:
            try:
                for line_no, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    if index >= start:
                        try:
                            record = json.loads(line)
                        except ValueError:
                            record = None
                            batch.bad[batch.size] = "not valid JSON"
                        if record is not None and not isinstance(record, dict):
                            batch.bad[batch.size] = "not a JSON object"
                            record = None
                        batch.rows.append(record)
                        batch.lines.append(line_no)  # type: ignore[union-attr]
                        batch.size += 1
                        if batch.size == size:
                            yield batch
                            batch = Batch(start=index + 1, size=0, lines=[])
                    index += 1
            except UnicodeDecodeError as exc:
                raise DatasetError(f"{self.path}: after line {line_no}: bytes not valid {self.encoding} "
                                   f"({exc.reason})", field="input") from None
        if batch.size:
            yield batch

    def _columns_of(self, batch: Batch) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for i, record in enumerate(batch.rows):
            if i in batch.bad:
                continue
            for key, value in record.items():
                out.setdefault(key, []).append(value if isinstance(value, str) else _cell_text(value))
        return out


class ParquetDataset(_FileDataset):
    """A Parquet file, read batch by batch; columns keep their Arrow types."""

    kind = "parquet"

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.name = str(path)
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types on a corrupt file
            raise DatasetError(f"{path}: not a readable Parquet file ({type(exc).__name__})", field="input") from None
        self.schema = self._file.schema_arrow
        self.columns = _checked_header(list(self.schema.names), path)
        self.rows_total = self._file.metadata.num_rows

    def batches(self, size: int, start: int = 0) -> Iterator[Batch]:
        position = 0
        pending: list[Any] = []
        pending_rows = 0
        next_start = start
        try:
            for record_batch in self._file.iter_batches(batch_size=size):
                n = record_batch.num_rows
                if position + n <= start:
                    position += n
                    continue
                if position < start:
                    record_batch = record_batch.slice(start - position)
                position += n
                pending.append(record_batch)
                pending_rows += record_batch.num_rows
                while pending_rows >= size:
                    out, pending, pending_rows = _take(pending, size)
                    yield Batch(start=next_start, size=out.num_rows, table=out)
                    next_start += out.num_rows
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, QorgauError):
                raise
            raise DatasetError(f"{self.path}: rows after {position}: cannot read ({type(exc).__name__})",
                               field="input") from None
        if pending_rows:
            out, _, _ = _take(pending, pending_rows)
            yield Batch(start=next_start, size=out.num_rows, table=out)

    def _columns_of(self, batch: Batch) -> dict[str, list[Any]]:
        return {name: [_cell_text(v) for v in batch.table.column(i).to_pylist()]
                for i, name in enumerate(self.columns)}


def _take(pending: list[Any], size: int) -> tuple[Any, list[Any], int]:
    """The first ``size`` rows of a list of record batches as one batch, and the rest."""
    import pyarrow as pa

    table = pa.Table.from_batches(pending)
    head, rest = table.slice(0, size), table.slice(size)
    combined = head.combine_chunks().to_batches()
    out = combined[0] if combined else pa.RecordBatch.from_pylist([], schema=table.schema)
    rest_batches = rest.combine_chunks().to_batches() if rest.num_rows else []
    return out, rest_batches, rest.num_rows


def _arrow_type_for_sql(column: Any) -> Any:
    """The Arrow type a SQL column's values are written as (types the CSV/Parquet output can keep)."""
    import pyarrow as pa
    from sqlalchemy import types as t

    kind = column.type
    try:
        python = kind.python_type
    except NotImplementedError:
        python = None
    if isinstance(kind, t.Boolean) or python is bool:
        return pa.bool_()
    if isinstance(kind, t.Integer) or python is int:
        return pa.int64()
    if isinstance(kind, t.Float) or python is float:
        return pa.float64()
    if isinstance(kind, t.Numeric) or python is Decimal:
        return pa.string()  # exact decimals as text; precision varies by database
    if isinstance(kind, t.DateTime) or python is datetime:
        return pa.timestamp("us", tz="UTC") if getattr(kind, "timezone", False) else pa.timestamp("us")
    if isinstance(kind, t.Date) or python is date:
        return pa.date32()
    if isinstance(kind, t.LargeBinary) or python is bytes:
        return pa.binary()
    return pa.string()


def _sql_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class SqlDataset(Dataset):
    """A table of a SQL database, read in primary-key order (all columns when there is no key)."""

    kind = "sql"

    def __init__(self, url: str, table: str, *, where: str | None = None) -> None:
        import pyarrow as pa
        from sqlalchemy import MetaData, Table, create_engine, inspect

        from ..discovery.sources import display_url

        self.url = url
        self.table_name = table
        self.where = where
        self.name = f"{display_url(url)} table {table}"
        try:
            self._engine = create_engine(_sql_url(url))
            with self._engine.connect() as conn:
                if not inspect(conn).has_table(table):
                    raise DatasetError(f"no table named {table!r} in the database", field="table")
                self._table = Table(table, MetaData(), autoload_with=conn)
        except QorgauError:
            raise
        except Exception as exc:  # noqa: BLE001 - driver messages may echo the URL with its password
            raise DatasetError(f"cannot open the database ({type(exc).__name__})", field="input") from None
        self.columns = _checked_header([c.name for c in self._table.columns], self.name)
        self.schema = pa.schema([pa.field(c.name, _arrow_type_for_sql(c)) for c in self._table.columns])
        keys = list(self._table.primary_key.columns)
        self._order = keys or list(self._table.columns)
        self.ordered_by = [c.name for c in self._order]
        self._digests: list[str] = []

    def describe(self) -> dict[str, Any]:
        from ..discovery.sources import display_url

        return {"kind": self.kind, "name": self.name, "url": display_url(self.url), "table": self.table_name,
                "where": self.where, "ordered_by": self.ordered_by}

    def _select(self) -> Any:
        from sqlalchemy import select, text

        stmt = select(self._table).order_by(*self._order)
        if self.where:
            stmt = stmt.where(text(self.where))
        return stmt

    def batches(self, size: int, start: int = 0) -> Iterator[Batch]:
        """Batches from row ``start``; the rows skipped are still read, to check the chained digest."""
        import pyarrow as pa
        from sqlalchemy.exc import SQLAlchemyError

        digest = ""
        self._digests = []
        index = 0
        try:
            with self._engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=size).execute(self._select())
                for rows in result.partitions(size):
                    columns = list(zip(*rows)) if rows else [[] for _ in self.columns]
                    arrays = [_to_arrow(list(values), fld.type, name)
                              for values, fld, name in zip(columns, self.schema, self.columns)]
                    record_batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
                    digest = _chain(digest, record_batch)
                    self._digests.append(digest)
                    if index + len(rows) > start:
                        piece = record_batch.slice(max(0, start - index))
                        yield Batch(start=max(start, index), size=piece.num_rows, table=piece)
                    index += len(rows)
        except QorgauError:
            raise
        except SQLAlchemyError as exc:
            raise DatasetError(f"{self.name}: database error after row {index} ({type(exc).__name__})",
                               field="where" if self.where else "input") from None

    def digest_after(self, batches: int) -> str:
        """The chained digest of the first ``batches`` batches read by the last :meth:`batches` call."""
        return self._digests[batches - 1] if batches else ""

    def fingerprint(self) -> dict[str, Any]:
        return {"rows_digest": "computed while reading (chained SHA-256 per batch)"}

    def _columns_of(self, batch: Batch) -> dict[str, list[Any]]:
        return {name: [_cell_text(v) for v in batch.table.column(i).to_pylist()]
                for i, name in enumerate(self.columns)}

    def close(self) -> None:
        self._engine.dispose()


def _to_arrow(values: list[Any], arrow_type: Any, column: str) -> Any:
    import pyarrow as pa

    if pa.types.is_string(arrow_type):
        values = [None if v is None else v if isinstance(v, str) else str(v) for v in values]
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        raise DatasetError(f"column {column!r}: values do not fit the column's declared type",
                           field="input") from None


def _chain(previous: str, record_batch: Any) -> str:
    """SHA-256 over the previous digest and a batch's Arrow IPC bytes (deterministic for the same rows)."""
    sink = record_batch.serialize()
    return hashlib.sha256(previous.encode("ascii") + memoryview(sink)).hexdigest()


def open_dataset(spec: str | Path, *, table: str | None = None, where: str | None = None,
                 sample_rows: int = DEFAULT_SAMPLE_ROWS) -> Dataset:
    """The dataset named by a path (format from the extension) or a SQLAlchemy URL with ``table``."""
    from ..discovery.sources import is_database_url

    text = str(spec)
    if is_database_url(text):
        if not table:
            raise DatasetError("a database input needs a table (--table NAME)", field="table")
        return SqlDataset(text, table, where=where)
    if table or where:
        raise DatasetError("--table and --where apply to database inputs only", field="table" if table else "where")
    path = Path(text)
    kind = FORMAT_BY_EXTENSION.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(FORMAT_BY_EXTENSION))
        raise DatasetError(f"{path}: unknown format; use one of {known} or a database URL", field="input")
    if not path.is_file():
        raise DatasetError(f"{path}: no such file", field="input")
    if kind == "csv":
        return CsvDataset(path)
    if kind == "jsonl":
        return JsonlDataset(path, sample_rows=sample_rows)
    return ParquetDataset(path)


# --- the plan: which column goes where ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """What happens to one input column. ``rule`` names the evidence (column names are schema, not data)."""

    name: str
    position: int
    action: str  # "vault" | "keep" | "drop"
    entity_type: str | None
    rule: str
    source: str  # "columns" (explicit) | "classified"
    category: str | None = None
    special_category: str | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "position": self.position, "action": self.action,
                               "entity_type": self.entity_type, "rule": self.rule, "source": self.source}
        if self.category is not None:
            out["category"] = self.category
        if self.special_category is not None:
            out["special_category"] = self.special_category
        if self.confidence is not None:
            out["confidence"] = self.confidence
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnPlan:
        return cls(name=d["name"], position=d["position"], action=d["action"], entity_type=d.get("entity_type"),
                   rule=d["rule"], source=d["source"], category=d.get("category"),
                   special_category=d.get("special_category"), confidence=d.get("confidence"))


def known_entity_types() -> frozenset[str]:
    from ..discovery.types import EntityType

    return frozenset(t.value for t in EntityType)


def parse_columns_map(spec: str | Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """``"iin=KZ_IIN,fio=PERSON,diagnosis=keep"`` (or a mapping, or repeated options) → ``{column: decision}``.

    A decision is an entity type (``KZ_IIN``, ``PERSON``, ``PHONE_NUMBER`` …), ``keep`` (the data itself)
    or ``drop`` (left out, stored nowhere). Errors name the item, never a cell value.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        items = [(str(k), str(v)) for k, v in spec.items()]
    else:
        parts = [spec] if isinstance(spec, str) else list(spec)
        items = []
        for part in parts:
            for item in part.split(","):
                if not item.strip():
                    continue
                name, eq, decision = item.rpartition("=")
                if not eq or not name.strip() or not decision.strip():
                    raise InvalidInput(f"--columns takes COLUMN=TYPE|keep|drop items, got {item.strip()!r}",
                                       field="columns")
                items.append((name.strip(), decision.strip()))
    known = known_entity_types()
    out: dict[str, str] = {}
    for name, decision in items:
        norm = decision.lower() if decision.lower() in (KEEP, DROP) else decision.upper()
        if norm not in known and norm not in (KEEP, DROP):
            raise InvalidInput(f"--columns {name}: unknown decision {decision!r}; use keep, drop or one of "
                               f"{', '.join(sorted(known))}", field="columns")
        if name in out and out[name] != norm:
            raise InvalidInput(f"--columns names {name!r} twice", field="columns")
        out[name] = norm
    return out


def plan_columns(dataset: Dataset, explicit: Mapping[str, str], *, sample_rows: int = DEFAULT_SAMPLE_ROWS,
                 scan: Callable[[str], list[Any]] | None = None) -> list[ColumnPlan]:
    """Decide every column: explicit decisions first, the classifier for the rest (sampled values)."""
    from ..discovery.columns import IDENTIFYING, classify_column

    missing = [name for name in explicit if name not in dataset.columns]
    if missing:
        raise InvalidInput(f"--columns: no column named {', '.join(repr(m) for m in missing)} in {dataset.name}",
                           field="columns")
    undecided = [c for c in dataset.columns if c not in explicit]
    samples = dataset.sample(sample_rows) if undecided else {}
    plans: list[ColumnPlan] = []
    for position, name in enumerate(dataset.columns):
        decision = explicit.get(name)
        if decision is not None:
            action = decision if decision in (KEEP, DROP) else VAULT
            plans.append(ColumnPlan(name, position, action, None if action != VAULT else decision,
                                    rule=f"--columns {name}={decision}", source="columns"))
            continue
        verdict = classify_column(name, samples.get(name, []), scan)
        if verdict.category == IDENTIFYING:
            if verdict.entity_type is None:
                raise InvalidInput(
                    f"column {name!r} looks identifying ({verdict.rule}) but has no identifier type the vault "
                    f"knows; decide it explicitly: --columns {name}=drop, {name}=keep or {name}=TYPE",
                    field="columns")
            plans.append(ColumnPlan(name, position, VAULT, verdict.entity_type, verdict.rule, "classified",
                                    verdict.category, verdict.special_category, verdict.confidence))
        else:
            plans.append(ColumnPlan(name, position, KEEP, None, verdict.rule, "classified", verdict.category,
                                    verdict.special_category, verdict.confidence))
    per_type = Counter(p.entity_type for p in plans if p.action == VAULT and p.source == "classified")
    for entity_type in sorted(ONE_PER_PERSON):
        if per_type[entity_type] > 1 or (per_type[entity_type] == 1 and any(
                p.entity_type == entity_type and p.source == "columns" for p in plans)):
            names = [p.name for p in plans if p.entity_type == entity_type]
            raise InvalidInput(
                f"columns {', '.join(map(repr, names))} are all {entity_type}: a row must describe one person. "
                f"Split one person per run, or decide the columns explicitly with --columns", field="columns")
    if not any(p.action == VAULT for p in plans):
        raise InvalidInput(f"{dataset.name}: no identifying column found; nothing to move into the vault "
                           "(name them with --columns COLUMN=TYPE)", field="columns")
    return plans


# --- writing ------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class AppendFile:
    """A file that grows by appends; :meth:`sync` makes them durable and returns the size to checkpoint."""

    def __init__(self, path: Path, *, truncate_to: int | None = None) -> None:
        self.path = path
        if truncate_to is None:
            self._fh = open(path, "wb")  # noqa: SIM115
        else:
            size = path.stat().st_size if path.exists() else 0
            if size < truncate_to:
                raise InvalidInput(f"{path} is shorter than its last checkpoint (deleted or damaged?); delete "
                                   "the state directory to start over", field="resume")
            self._fh = open(path, "r+b") if path.exists() else open(path, "wb")  # noqa: SIM115
            self._fh.truncate(truncate_to)
            self._fh.seek(truncate_to)

    def write(self, data: bytes) -> None:
        self._fh.write(data)

    def sync(self) -> int:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


class _Output:
    """The split or joined dataset being written: ``append`` a batch, ``sync`` → checkpoint position."""

    kind = ""

    def append(self, batch_output: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def sync(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self, final: Path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass


class CsvOutput(_Output):
    """CSV rows (lists of cells), UTF-8, the input's delimiter, a header first."""

    kind = "csv"

    def __init__(self, path: Path, header: list[str], *, delimiter: str = ",", resume_at: int | None = None) -> None:
        self.file = AppendFile(path, truncate_to=resume_at)
        self.delimiter = delimiter
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=delimiter, lineterminator="\n")
        if not resume_at:
            self.append([header])

    def append(self, rows: list[list[Any]]) -> None:
        self._writer.writerows(rows)
        self.file.write(self._buffer.getvalue().encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()

    def sync(self) -> int:
        return self.file.sync()

    def finish(self, final: Path) -> None:
        self.file.sync()
        self.file.close()
        os.replace(self.file.path, final)
        _fsync_dir(final.parent)

    def close(self) -> None:
        self.file.close()


class JsonlOutput(_Output):
    """One JSON object per line, UTF-8, non-ASCII kept as is."""

    kind = "jsonl"

    def __init__(self, path: Path, *, resume_at: int | None = None) -> None:
        self.file = AppendFile(path, truncate_to=resume_at)

    def append(self, records: list[dict[str, Any]]) -> None:
        self.file.write("".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n"
                                for r in records).encode("utf-8"))

    def sync(self) -> int:
        return self.file.sync()

    def finish(self, final: Path) -> None:
        self.file.sync()
        self.file.close()
        os.replace(self.file.path, final)
        _fsync_dir(final.parent)

    def close(self) -> None:
        self.file.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(type(value).__name__)


class ParquetPartsOutput(_Output):
    """Parquet: one durable part file per batch (a torn Parquet file cannot be appended to or repaired),
    assembled into the final file when the run completes. ``sync`` returns the number of parts."""

    kind = "parquet"

    def __init__(self, directory: Path, schema: Any, *, resume_at: int | None = None) -> None:
        self.directory = directory
        self.schema = schema
        directory.mkdir(exist_ok=True)
        self.parts = resume_at or 0
        for stale in directory.iterdir():  # parts after the checkpoint, and torn temporary files
            number = _part_number(stale)
            if number is None or number >= self.parts:
                stale.unlink()
        self._pending: list[Any] = []

    def append(self, record_batch: Any) -> None:
        self._pending.append(record_batch)

    def sync(self) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._pending = []
            final = self.directory / f"part-{self.parts:08d}.parquet"
            tmp = self.directory / f"part-{self.parts:08d}.tmp"
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            _fsync_dir(self.directory)
            self.parts += 1
        return self.parts

    def finish(self, final: Path) -> None:
        self.sync()
        write_parquet_parts(self.directory, self.parts, self.schema, final)


def _part_number(path: Path) -> int | None:
    m = re.fullmatch(r"part-(\d{8})\.parquet", path.name)
    return int(m.group(1)) if m else None


def write_parquet_parts(directory: Path, parts: int, schema: Any, final: Path) -> None:
    """Concatenate the part files into one Parquet file (row groups of about 64k rows), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = final.with_name("." + final.name + ".assembling")
    with open(tmp, "wb") as fh:
        writer = pq.ParquetWriter(fh, schema)
        pending: list[Any] = []
        rows = 0
        for number in range(parts):
            table = pq.read_table(directory / f"part-{number:08d}.parquet", schema=schema)
            pending.append(table)
            rows += table.num_rows
            if rows >= PARQUET_ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending), row_group_size=PARQUET_ROW_GROUP_ROWS)
                pending, rows = [], 0
        if pending or parts == 0:
            writer.write_table(pa.concat_tables(pending) if pending else schema.empty_table(),
                               row_group_size=PARQUET_ROW_GROUP_ROWS)
        writer.close()
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(final.parent)


# --- split --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SplitProgress:
    """Passed to ``on_progress`` after every committed batch."""

    rows: int  # input rows done (this run and earlier ones)
    total: int | None  # input rows in all, when known (Parquet); None while streaming CSV/JSON Lines/SQL
    written: int
    problems: int


@dataclass
class SplitReport:
    """What a split did; ``manifest`` is the manifest document without its problem list."""

    output: Path
    manifest_path: Path
    rows: int
    written: int
    tokenized: int
    subjects_created: int
    without_identifiers: int
    invalid: int
    kept_invalid: int
    left_out: int
    problems: int
    resumed: bool
    seconds: float
    manifest: dict[str, Any]

    def __repr__(self) -> str:
        return (f"SplitReport(rows={self.rows}, written={self.written}, tokenized={self.tokenized}, "
                f"problems={self.problems}, resumed={self.resumed})")


_COUNTERS = ("rows", "written", "tokenized", "subjects_created", "without_identifiers", "invalid",
             "kept_invalid", "left_out", "problems")


def state_dir_for(output: Path) -> Path:
    """Where an unfinished split of ``output`` keeps its state (next to it, hidden)."""
    return output.parent / ("." + output.name + STATE_SUFFIX)


def default_manifest_path(output: Path) -> Path:
    return output.with_name(output.name + ".manifest.json")


def _output_format(dataset: Dataset, output: Path) -> str:
    kind = FORMAT_BY_EXTENSION.get(output.suffix.lower())
    if dataset.kind == "sql":
        if kind not in ("parquet", "csv"):
            raise InvalidInput("a database table is split into a .parquet (types kept) or .csv file",
                               field="output")
        return kind
    if kind != dataset.kind:
        raise InvalidInput(f"the output must have the input's format ({dataset.kind}); got {output.suffix or 'no extension'}",
                           field="output")
    return kind


def _schema_b64(schema: Any) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def _schema_from_b64(text: str) -> Any:
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


class _Splitter:
    """Per-format: turn a batch into subject records, and the tokens back into output rows."""

    def __init__(self, dataset: Dataset, plan: list[ColumnPlan], pseudonym_column: str, out_format: str,
                 sample_rows: int) -> None:
        self.dataset = dataset
        self.plan = plan
        self.pseudonym_column = pseudonym_column
        self.out_format = out_format
        self.moved = [(p.position, p.name, p.entity_type) for p in plan if p.action == VAULT]
        self.kept = [p for p in plan if p.action == KEEP]
        self.dropped = {p.name for p in plan if p.action == DROP}
        self.moved_names = {name for _, name, _ in self.moved}
        self._type_of = {name: entity_type for _, name, entity_type in self.moved}
        self._known = set(dataset.columns)
        self.sample_rows = sample_rows
        self.late_keys: dict[str, str] = {}  # JSON Lines: keys first seen after the sample → action
        self.output_schema: Any = None
        if dataset.kind in ("parquet", "sql"):
            import pyarrow as pa

            schema = dataset.schema  # type: ignore[attr-defined]
            for _, name, _ in self.moved:
                t = schema.field(name).type
                if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
                        or pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_decimal(t)
                        or pa.types.is_floating(t) or pa.types.is_dictionary(t)):
                    raise DatasetError(f"column {name!r} is identifying but of type {t}; only text, number and "
                                       "date columns can move into the vault", field="columns")
            fields = [pa.field(pseudonym_column, pa.string())]
            fields += [schema.field(p.name) for p in self.kept]
            self.output_schema = pa.schema(fields)

    def output_columns(self) -> list[str]:
        return [self.pseudonym_column] + [p.name for p in self.kept]

    # records: one entry per row: None (malformed: left out), {} (no identifiers), or {type: [values]}
    def records(self, batch: Batch, problems: list[dict[str, Any]]) -> list[dict[str, list[str]] | None]:
        kind = self.dataset.kind
        out: list[dict[str, list[str]] | None] = []
        if kind == "csv":
            for i, row in enumerate(batch.rows):
                if i in batch.bad:
                    problems.append(self._problem(batch, i, None, None, batch.bad[i], "left out"))
                    out.append(None)
                    continue
                ids: dict[str, list[str]] = {}
                for position, _, entity_type in self.moved:
                    value = row[position]
                    if value and not value.isspace():
                        ids.setdefault(entity_type, []).append(value)
                out.append(ids)
            return out
        if kind == "jsonl":
            for i, record in enumerate(batch.rows):
                if i in batch.bad:
                    problems.append(self._problem(batch, i, None, None, batch.bad[i], "left out"))
                    out.append(None)
                    continue
                ids = {}
                bad = None
                for key, value in record.items():
                    action, entity_type = self._json_action(key, batch, i, problems)
                    if action == "left out":
                        bad = (entity_type or "malformed record", None, None)
                        break
                    if action != VAULT:
                        continue
                    if not _is_scalar(value):
                        bad = (f"field is a {type(value).__name__}, not a single value", key, entity_type)
                        break
                    text = _cell_text(value, entity_type)
                    if text is not None:
                        ids.setdefault(entity_type, []).append(text)  # type: ignore[arg-type]
                if bad is not None:
                    problems.append(self._problem(batch, i, bad[1], bad[2], bad[0], "left out"))
                    batch.bad[i] = bad[0]
                    out.append(None)
                    continue
                out.append(ids)
            return out
        table = batch.table
        columns = [(entity_type, table.column(position).to_pylist()) for position, _, entity_type in self.moved]
        for r in range(batch.size):
            ids = {}
            for entity_type, values in columns:
                text = _cell_text(values[r], entity_type)
                if text is not None:
                    ids.setdefault(entity_type, []).append(text)
            out.append(ids)
        return out

    def _json_action(self, key: str, batch: Batch, i: int, problems: list[dict[str, Any]]) -> tuple[str, str | None]:
        """(action, entity type) for a record's key; ("left out", reason) when the record cannot be split."""
        if key in self.moved_names:
            return VAULT, self._type_of[key]
        if key in self.dropped:
            return DROP, None
        if key in self._known:
            return KEEP, None
        if key == self.pseudonym_column:
            return "left out", "a field has the pseudonym column's name"
        decided = self.late_keys.get(key)
        if decided is None:
            decided = _late_key_action(key)
            self.late_keys[key] = decided
            if decided != KEEP and decided != "left out":
                problems.append(self._problem(batch, i, key, decided if decided not in (DROP,) else None,
                                              f"field first seen after the sampled records; by its name: "
                                              f"{'moved to the vault as ' + decided if decided != DROP else 'identifying, dropped'}",
                                              "late field", late=True))
        if decided == "left out":
            return decided, "a field name holds personal data"
        if decided in (KEEP, DROP):
            return decided, None
        return VAULT, decided

    def _problem(self, batch: Batch, i: int, column: str | None, entity_type: str | None, reason: str,
                 outcome: str, late: bool = False) -> dict[str, Any]:
        problem: dict[str, Any] = {"row": batch.start + i + 1}
        if batch.lines is not None:
            problem["line"] = batch.lines[i]
        if column is not None:
            problem["column"] = column
        if entity_type is not None:
            problem["type"] = entity_type
        problem["reason"] = reason
        problem["outcome"] = outcome
        if late:
            problem["late_field"] = True
        return problem

    def output(self, batch: Batch, pseudonyms: list[str]) -> tuple[Any, int]:
        """The batch's output (rows, records or a record batch) and how many rows it has."""
        kind = self.dataset.kind
        if kind == "csv":
            keep = [p.position for p in self.kept]
            rows = [[pseudonyms[i]] + [row[k] for k in keep]
                    for i, row in enumerate(batch.rows) if i not in batch.bad]
            return rows, len(rows)
        if kind == "jsonl":
            records = []
            for i, record in enumerate(batch.rows):
                if i in batch.bad:
                    continue
                out = {self.pseudonym_column: pseudonyms[i]}
                for key, value in record.items():
                    if key in self.moved_names or key in self.dropped:
                        continue
                    if key not in self._known and self.late_keys.get(key, KEEP) != KEEP:
                        continue
                    out[key] = value
                records.append(out)
            return records, len(records)
        import pyarrow as pa

        table = batch.table
        arrays = [pa.array(pseudonyms, type=pa.string())] + [table.column(p.position) for p in self.kept]
        record_batch = pa.RecordBatch.from_arrays(arrays, schema=self.output_schema)
        if self.out_format == "csv":
            return _arrow_rows_as_text(record_batch), record_batch.num_rows
        return record_batch, record_batch.num_rows


def _late_key_action(key: str) -> str:
    """A JSON Lines key not in the sampled records: decided by its name alone (deterministic on resume)."""
    from ..discovery.columns import IDENTIFYING, classify_by_name

    if _looks_like_personal_data(key):
        return "left out"
    verdict = classify_by_name(key)
    if verdict is None or verdict.category != IDENTIFYING:
        return KEEP
    return verdict.entity_type or DROP


def _arrow_rows_as_text(record_batch: Any) -> list[list[str]]:
    columns = [[_csv_text(v) for v in record_batch.column(i).to_pylist()] for i in range(record_batch.num_columns)]
    return [list(row) for row in zip(*columns)]


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _last_checkpoint(session: Any, run: str) -> dict[str, Any] | None:
    """The newest committed ``vault.split.batch`` entry of this run (the session is tenant-scoped)."""
    from ..core import audit

    before = None
    while True:
        entries = audit.list_entries(session, limit=500, before=before, action=ACTION_BATCH)
        for entry in entries:
            if entry.object_id == run:
                return dict(entry.details)
        if len(entries) < 500:
            return None
        before = entries[-1].id


def _resolve_problem(result: Any, plan: list[ColumnPlan]) -> tuple[str | None, str | None]:
    """A vault RowProblem's field (an entity type, or a column name) → (column, entity type)."""
    field_name = getattr(result, "field", None)
    columns = [p for p in plan if p.action == VAULT]
    by_name = [p for p in columns if p.name == field_name]
    if by_name:
        return by_name[0].name, by_name[0].entity_type
    by_type = [p for p in columns if p.entity_type == field_name]
    if len(by_type) == 1:
        return by_type[0].name, by_type[0].entity_type
    return None, field_name


def split(
    input: str | Path,
    output: str | Path,
    *,
    platform: Platform,
    org: int,
    actor: str,
    columns: str | Mapping[str, str] | Sequence[str] | None = None,
    domain: str | None = None,
    resume: bool = False,
    keep_invalid: bool | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    table: str | None = None,
    where: str | None = None,
    pseudonym_column: str | None = None,
    manifest: str | Path | None = None,
    scan_values: bool = True,
    vault: Any = None,
    on_progress: Callable[[SplitProgress], None] | None = None,
    workers: int | None = None,
) -> SplitReport:
    """Split ``input`` into ``output`` (pseudonym + data itself) and the vault (identities). L-PD-SPLIT.

    ``org`` is the organization id whose vault receives the identities; ``actor`` names the caller in the
    audit log. ``columns`` decides columns explicitly (others are classified); ``domain`` is the
    pseudonym domain (default ``default``). With ``resume`` an interrupted run of the same output is
    continued from its last committed batch (a fresh run starts when there is none). See the module
    docstring for the checkpoint protocol and what happens to bad rows.

    ``workers``: processes that validate the next batch's identifiers while this one is written (0: in
    this process; default: 1 on a machine with two or more cores, started after the first
    :data:`INLINE_BATCHES` batches and :data:`INLINE_ROWS` rows, so small inputs don't pay for its
    start-up). See docs/split.md § Performance.
    """
    started = time.monotonic()
    output = Path(output)
    manifest_path = Path(manifest) if manifest else default_manifest_path(output)
    if batch_size < 1 or batch_size > 100_000:
        raise InvalidInput("batch size must be 1–100,000 rows", field="batch_size")
    if pseudonym_column is not None and not pseudonym_column.strip():
        raise InvalidInput("the pseudonym column needs a name", field="pseudonym_column")
    if domain is not None and not re.fullmatch(r"[a-z0-9_-]{1,40}", domain):
        raise InvalidInput("a domain is 1–40 of a-z, 0-9, '_' and '-'", field="domain")
    state_dir = state_dir_for(output)
    state_file = state_dir / "state.json"
    dataset = open_dataset(input, table=table, where=where, sample_rows=sample_rows)
    lock = None
    try:
        out_format = _output_format(dataset, output)
        resumed = resume and state_file.exists()
        if state_dir.exists() and not resumed:
            if resume:  # a state dir without a state file: the run died before it wrote its plan
                shutil.rmtree(state_dir)
            else:
                raise InvalidInput(f"an interrupted split of {output} exists ({state_dir}); continue it with "
                                   "--resume, or delete that directory to start over", field="output")
        if output.exists() and not resumed:
            raise InvalidInput(f"{output} already exists; remove it or choose another output", field="output")
        if resumed:
            lock = _lock(state_dir)
            state = json.loads(state_file.read_text())
            _check_resume(state, dataset, org, columns, domain, keep_invalid, batch_size, pseudonym_column,
                          out_format)
            plan = [ColumnPlan.from_dict(d) for d in state["plan"]]
        else:
            explicit = parse_columns_map(columns)
            scanner = _default_scan() if scan_values else None
            t0 = time.monotonic()
            plan = plan_columns(dataset, explicit, sample_rows=sample_rows, scan=scanner)
            pcol = pseudonym_column or "pseudonym"
            if pcol in {p.name for p in plan if p.action == KEEP}:
                raise InvalidInput(f"the input already has a column {pcol!r}; name the pseudonym column with "
                                   "--pseudonym-column", field="pseudonym_column")
            state = {
                "version": MANIFEST_VERSION, "run": _letters(), "organization_id": org, "actor": actor,
                "domain": domain or "default", "keep_invalid": bool(keep_invalid), "batch_size": batch_size,
                "sample_rows": sample_rows, "pseudonym_column": pcol, "output": str(output), "format": out_format,
                "input": {**dataset.describe(), **dataset.fingerprint()},
                "plan": [p.to_dict() for p in plan], "started_at": _now(),
                "classify_seconds": round(time.monotonic() - t0, 3), "resumes": 0,
                "input_schema": _schema_b64(dataset.schema) if dataset.kind in ("parquet", "sql") else None,
            }
            state_dir.mkdir(mode=0o700)
            lock = _lock(state_dir)
            _atomic_write(state_file, json.dumps(state, ensure_ascii=False, indent=1).encode("utf-8"))
        return _run(platform, dataset, state, state_dir, output, manifest_path, plan, resumed, vault,
                    on_progress, started, workers)
    finally:
        if lock is not None:
            lock.close()
        if isinstance(dataset, SqlDataset):
            dataset.close()


def _lock(state_dir: Path) -> Any:
    """An exclusive lock on the state dir for this process (released when it exits, even by SIGKILL)."""
    import fcntl

    fh = open(state_dir / "lock", "a+b")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise InvalidInput(f"another split of this output is running ({state_dir})", field="output") from None
    return fh


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_SCANNER: Any = None


def _default_scan() -> Callable[[str], list[Any]]:
    """The discovery scanner's ``scan``, built once per process (building it loads lexicons and Natasha)."""
    global _SCANNER
    if _SCANNER is None:
        from ..discovery.engine import Scanner

        _SCANNER = Scanner.default()
    return _SCANNER.scan


def _check_resume(state: dict[str, Any], dataset: Dataset, org: int, columns: Any, domain: str | None,
                  keep_invalid: bool | None, batch_size: int, pseudonym_column: str | None, out_format: str) -> None:
    def differs(what: str) -> InvalidInput:
        return InvalidInput(f"--resume: {what} differs from the interrupted run; resume with the same options "
                            "or delete the state directory to start over", field=what.split()[0])

    if state.get("version") != MANIFEST_VERSION:
        raise InvalidInput("--resume: the interrupted run was made by another qorgau version", field="resume")
    if state["organization_id"] != org:
        raise differs("organization")
    if domain is not None and domain != state["domain"]:
        raise differs("domain")
    if keep_invalid is not None and bool(keep_invalid) != state["keep_invalid"]:
        raise differs("keep_invalid")
    if batch_size != state["batch_size"] and batch_size != DEFAULT_BATCH_SIZE:
        raise differs("batch_size")
    if pseudonym_column is not None and pseudonym_column != state["pseudonym_column"]:
        raise differs("pseudonym_column")
    if out_format != state["format"]:
        raise differs("output format")
    if columns:
        explicit = parse_columns_map(columns)
        planned = {p["name"]: (p["entity_type"] or p["action"]) for p in state["plan"] if p["source"] == "columns"}
        if explicit != planned:
            raise differs("columns")
    if dataset.kind != state["input"]["kind"]:
        raise differs("input")
    if dataset.kind != "sql" and dataset.fingerprint()["sha256"] != state["input"]["sha256"]:
        raise InvalidInput("--resume: the input file changed since the interrupted run (its SHA-256 differs); "
                           "delete the state directory to start over", field="input")


def _run(platform: Platform, dataset: Dataset, state: dict[str, Any], state_dir: Path, output: Path,
         manifest_path: Path, plan: list[ColumnPlan], resumed: bool, vault: Any,
         on_progress: Callable[[SplitProgress], None] | None, started: float, workers: int | None) -> SplitReport:
    from ..core import audit
    from .service import SubjectRecord, check_records, vault_for

    vault = vault or vault_for(platform)
    org, run, domain = state["organization_id"], state["run"], state["domain"]
    keep_invalid, batch_size = state["keep_invalid"], state["batch_size"]
    out_format = state["format"]
    splitter = _Splitter(dataset, plan, state["pseudonym_column"], out_format, state["sample_rows"])

    checkpoint: dict[str, Any] | None = None
    if resumed:
        with platform.db.reader(org) as s:
            checkpoint = _last_checkpoint(s, run)
        state["resumes"] = int(state.get("resumes", 0)) + 1
        _atomic_write(state_dir / "state.json", json.dumps(state, ensure_ascii=False, indent=1).encode("utf-8"))
    counts = Counter({k: 0 for k in _COUNTERS})
    timings = Counter({"read": 0.0, "vault": 0.0, "write": 0.0, "commit": 0.0})
    if checkpoint:
        counts.update({k: _unwide(v) for k, v in checkpoint["counts"].items()})
        timings.update(checkpoint.get("timings_ms", {}) and {k: v / 1000 for k, v in checkpoint["timings_ms"].items()})
    done_rows = counts["rows"]
    batches_done = int(checkpoint["batch"]) if checkpoint else 0
    out_position = _unwide(checkpoint["output"]) if checkpoint else None
    problems_position = _unwide(checkpoint["problems"]) if checkpoint else None

    if resumed:
        partial = state_dir / "data.partial"
        if out_format in ("csv", "jsonl") and not partial.exists() and output.exists():
            os.replace(output, partial)  # the run died after moving the output into place: take it back
        elif out_format == "parquet" and output.exists():
            output.unlink()  # assembled from the parts again
    problems_file = AppendFile(state_dir / "problems.jsonl", truncate_to=problems_position or (0 if resumed else None))
    if resumed and dataset.kind == "jsonl":
        _reseed_late_keys(splitter, state_dir / "problems.jsonl")
    sink = _open_sink(splitter, state, state_dir, out_position if resumed else None)
    total = getattr(dataset, "rows_total", None)
    digest_checked = not (resumed and dataset.kind == "sql" and batches_done)
    batches = dataset.batches(batch_size, start=done_rows)
    bulk = callable(getattr(vault, "tokenize_checked", None))
    checker = _Checker(workers if bulk else 0, keep_invalid)

    def read_ahead() -> Iterator[tuple[Batch, list[dict[str, Any]], list[Any], list[int], Any]]:
        """Each batch with its records, and the validation of its identifiers under way in the worker
        (pure, key-free: ``check_records``) — one batch ahead of the batch being written."""
        pending = None
        t_read = time.monotonic()
        for batch in batches:
            problems: list[dict[str, Any]] = []
            records = splitter.records(batch, problems)  # in order, here: JSON Lines' late keys are decided here
            wanted = [i for i, r in enumerate(records) if r]
            subject_records = [SubjectRecord({t: v[0] if len(v) == 1 else list(v) for t, v in records[i].items()})
                               for i in wanted]
            checked = checker.submit(subject_records) if bulk and subject_records else subject_records
            timings["read"] += time.monotonic() - t_read
            if pending is not None:
                yield pending
            pending = (batch, problems, records, wanted, checked)
            t_read = time.monotonic()
        if pending is not None:
            yield pending

    gc_was_enabled = _gc_quiet()
    try:
        for batch, problems, records, wanted, checked in read_ahead():
            if not digest_checked:
                _check_sql_digest(dataset, batches_done, checkpoint)
                digest_checked = True
            pseudonyms = [""] * batch.size
            counts["without_identifiers"] += sum(1 for r in records if r is not None and not r)
            counts["left_out"] += sum(1 for r in records if r is None)
            t0 = time.monotonic()
            if bulk and wanted:
                checked = checker.result(checked)  # waited for outside the transaction: no lock held meanwhile
            with platform.db.transaction(org) as session:
                if not wanted:
                    results = []
                elif bulk:
                    results = vault.tokenize_checked(session, checked, domain=domain, actor=state["actor"],
                                                     cache=False)
                else:
                    results = vault.tokenize_many(session, checked, domain=domain, actor=state["actor"],
                                                  keep_invalid=keep_invalid)
                t1 = time.monotonic()
                timings["vault"] += t1 - t0
                for i, result in zip(wanted, results):
                    pseudonym = getattr(result, "pseudonym", None)
                    if pseudonym is not None:
                        pseudonyms[i] = pseudonym
                        counts["tokenized"] += 1
                        counts["subjects_created"] += bool(getattr(result, "created", False))
                        if keep_invalid:
                            for column, entity_type, reason in _invalid_values(records[i], plan):
                                counts["kept_invalid"] += 1
                                problems.append(splitter._problem(batch, i, column, entity_type,
                                                                  f"not a valid {entity_type}: {reason}",
                                                                  "stored in the vault marked invalid"))
                    else:
                        column, entity_type = _resolve_problem(result, plan)
                        counts["invalid"] += 1
                        problems.append(splitter._problem(batch, i, column, entity_type,
                                                          str(getattr(result, "reason", "invalid identifier")),
                                                          "written without pseudonym"))
                problems.sort(key=lambda p: p["row"])
                rows_out, n_out = splitter.output(batch, pseudonyms)
                sink.append(rows_out)
                if problems:
                    problems_file.write("".join(json.dumps(p, ensure_ascii=False) + "\n"
                                                for p in problems).encode("utf-8"))
                out_position = sink.sync()
                problems_position = problems_file.sync()
                t2 = time.monotonic()
                timings["write"] += t2 - t1
                counts["rows"] += batch.size
                counts["written"] += n_out
                counts["problems"] += sum(1 for p in problems if not p.get("late_field"))
                batches_done += 1
                details = {"batch": batches_done, "output": _wide(out_position), "problems": _wide(problems_position),
                           "counts": {k: _wide(v) for k, v in counts.items()},
                           "timings_ms": {k: round(v * 1000) for k, v in timings.items()}}
                if isinstance(dataset, SqlDataset):
                    details["digest"] = _as_letters(dataset.digest_after(batches_done))
                audit.record(session, actor=state["actor"], action=ACTION_BATCH, object_type="split_run",
                             object_id=run, organization_id=org, details=details)
            timings["commit"] += time.monotonic() - t2
            gc.collect(1)  # this batch's cyclic garbage, if any (cheap: young objects only): memory stays flat
            if on_progress is not None:
                on_progress(SplitProgress(counts["rows"], total, counts["written"], counts["problems"]))
        if not digest_checked:
            _check_sql_digest(dataset, batches_done, checkpoint)
        sink.finish(output)
        problems_file.close()
        return _finish(platform, dataset, state, state_dir, output, manifest_path, splitter, counts, timings,
                       resumed, started)
    finally:
        checker.close()
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()
        batches.close()  # a database cursor or file the generator holds is released now, not at GC
        sink.close()
        problems_file.close()


# The first batches are validated in this process; the worker starts after them, once the input has
# proved large enough to repay its start-up (a fresh interpreter: ≈ 0.5 CPU-s).
INLINE_BATCHES = 3
INLINE_ROWS = 20_000


def _gc_quiet() -> bool:
    """Keep the cycle collector off the hot loop: the batch path allocates millions of short-lived,
    acyclic objects (freed by reference counting anyway), and each full collection walks every object
    of the process — measured at a third of the vault's time. ``gc.freeze`` moves what exists now out of
    the collector's way; each batch ends with a young-generation collection (its cyclic garbage, if
    any), and the collector is switched back on when the split ends."""
    was = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    return was


def _checker_init(parent: int) -> None:
    """In the worker: Ctrl-C is the main process's to handle; and when the main process is gone (killed,
    even by SIGKILL) the worker ends too instead of waiting on its queue forever."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, name="qorgau-split-parent-watch", daemon=True).start()


class _Checker:
    """Validates batches of records (:func:`qorgau.vault.service.check_records`) in a worker process, so
    the next batch is checked while this one is written. The worker gets the identifying cells only —
    never a key: blind indexes, keys and sealing stay in this process. ``workers=0`` checks inline.

    The worker is a fresh interpreter (``spawn``: no keys, connections or threads of this process are
    inherited). Like every ``spawn`` child it imports the caller's main module, so a script calling
    ``split`` needs the usual ``if __name__ == "__main__":`` guard; if the worker cannot start or dies,
    the batches are checked in this process instead — slower, never wrong.
    """

    def __init__(self, workers: int | None, keep_invalid: bool) -> None:
        if workers is None:
            workers = 1 if (os.cpu_count() or 1) >= 2 else 0
        self.workers = 1 if workers else 0  # one batch is checked ahead: a second worker would idle
        self.keep_invalid = keep_invalid
        self._submitted = 0
        self._rows = 0
        self._pool: Any = None

    def _inline(self, records: list[Any]) -> list[Any]:
        from .service import check_records

        return check_records(records, keep_invalid=self.keep_invalid)

    def submit(self, records: list[Any]) -> Any:
        self._submitted += 1
        self._rows += len(records)
        if self.workers == 0 or self._submitted <= INLINE_BATCHES or self._rows <= INLINE_ROWS:
            return self._inline(records)
        from .service import check_records

        try:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_checker_init, initargs=(os.getpid(),))
            return _Pending(self._pool.submit(check_records, records, keep_invalid=self.keep_invalid), records)
        except Exception:  # noqa: BLE001 - the pool is an accelerator; checking inline is always correct
            self._give_up()
            return self._inline(records)

    def result(self, submitted: Any) -> list[Any]:
        if not isinstance(submitted, _Pending):
            return submitted
        try:
            return submitted.future.result()
        except Exception:  # noqa: BLE001 - BrokenProcessPool, a failed start: check here instead
            self._give_up()
            return self._inline(submitted.records)

    def _give_up(self) -> None:
        self.workers = 0
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@dataclass(slots=True)
class _Pending:
    future: Any
    records: list[Any]


def _invalid_values(record: Mapping[str, list[str]], plan: list[ColumnPlan]) -> list[tuple[str | None, str, str]]:
    """(column, type, reason) for each value of a record that fails validation (reported with keep_invalid)."""
    from .service import check_identifier

    out = []
    for entity_type, values in record.items():
        for value in values:
            reason = check_identifier(entity_type, value)[1]
            if reason is not None:
                column, _ = _resolve_problem(_FieldOnly(entity_type), plan)
                out.append((column, entity_type, reason))
    return out


@dataclass(frozen=True, slots=True)
class _FieldOnly:
    field: str


def _check_sql_digest(dataset: Dataset, batches_done: int, checkpoint: dict[str, Any] | None) -> None:
    assert isinstance(dataset, SqlDataset) and checkpoint is not None
    if _as_letters(dataset.digest_after(batches_done)) != checkpoint.get("digest"):
        raise InvalidInput("--resume: the table's rows changed since the interrupted run (the rows already "
                           "split read differently now); delete the state directory to start over", field="input")


def _reseed_late_keys(splitter: _Splitter, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as fh:
        for line in fh:
            problem = json.loads(line)
            if problem.get("late_field"):
                splitter.late_keys[problem["column"]] = problem.get("type") or DROP


def _open_sink(splitter: _Splitter, state: dict[str, Any], state_dir: Path, resume_at: int | None) -> _Output:
    out_format = state["format"]
    if out_format == "csv":
        delimiter = state["input"].get("delimiter") or ","
        return CsvOutput(state_dir / "data.partial", splitter.output_columns(), delimiter=delimiter,
                         resume_at=resume_at)
    if out_format == "jsonl":
        return JsonlOutput(state_dir / "data.partial", resume_at=resume_at)
    return ParquetPartsOutput(state_dir / "parts", splitter.output_schema, resume_at=resume_at)


def _finish(platform: Platform, dataset: Dataset, state: dict[str, Any], state_dir: Path, output: Path,
            manifest_path: Path, splitter: _Splitter, counts: Counter, timings: Counter, resumed: bool,
            started: float) -> SplitReport:
    from ..core import audit

    seconds = time.monotonic() - started
    total_seconds = sum(timings.values())
    input_doc = dict(state["input"])
    input_doc["rows"] = counts["rows"]
    if isinstance(dataset, SqlDataset):
        input_doc["rows_digest"] = dataset.digest_after(len(dataset._digests)) if dataset._digests else ""
    output_doc = {"path": str(output), "format": state["format"], "encoding": "utf-8" if state["format"] != "parquet" else None,
                  "columns": splitter.output_columns(), "rows": counts["written"], "sha256": _sha256_file(output)}
    if state["format"] == "csv":
        output_doc["delimiter"] = state["input"].get("delimiter") or ","
    late = {k: v for k, v in splitter.late_keys.items() if v != KEEP}
    doc: dict[str, Any] = {
        "qorgau_split_manifest": MANIFEST_VERSION,
        "run": state["run"],
        "organization_id": state["organization_id"],
        "started_at": state["started_at"],
        "finished_at": _now(),
        "input": input_doc,
        "output": output_doc,
        "pseudonym": {"column": state["pseudonym_column"], "domain": state["domain"]},
        "columns": state["plan"],
        "late_fields": late,
        "keep_invalid": state["keep_invalid"],
        "counts": dict(counts),
        "timings": {"classify_s": state.get("classify_seconds", 0.0), "read_s": round(timings["read"], 3),
                    "vault_s": round(timings["vault"], 3), "write_s": round(timings["write"], 3),
                    "commit_s": round(timings["commit"], 3), "this_run_s": round(seconds, 3),
                    "rows_per_s": round(counts["rows"] / total_seconds) if total_seconds else None},
        "resumes": state.get("resumes", 0),
        "input_schema": state.get("input_schema"),
    }
    _write_manifest(manifest_path, doc, state_dir / "problems.jsonl")
    with platform.db.transaction(state["organization_id"]) as session:
        audit.record(session, actor=state["actor"], action=ACTION_SPLIT, object_type="split_run",
                     object_id=state["run"], organization_id=state["organization_id"],
                     details={"format": state["format"], "domain": state["domain"],
                              "columns_moved": sum(1 for p in splitter.plan if p.action == VAULT),
                              "counts": {k: _wide(v) for k, v in counts.items()}, "resumes": state.get("resumes", 0)})
    shutil.rmtree(state_dir)
    return SplitReport(output=output, manifest_path=manifest_path, rows=counts["rows"], written=counts["written"],
                       tokenized=counts["tokenized"], subjects_created=counts["subjects_created"],
                       without_identifiers=counts["without_identifiers"], invalid=counts["invalid"],
                       kept_invalid=counts["kept_invalid"], left_out=counts["left_out"], problems=counts["problems"],
                       resumed=resumed, seconds=seconds, manifest=doc)


def _write_manifest(path: Path, doc: dict[str, Any], problems_path: Path) -> None:
    """The manifest JSON, the problem list streamed in from the state dir (it can be long), atomically."""
    tmp = path.with_name("." + path.name + ".tmp")
    listed = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        body = json.dumps(doc, ensure_ascii=False, indent=1)
        fh.write(body[:-2] + ',\n "problems": [')
        first = True
        with contextlib.suppress(FileNotFoundError), open(problems_path, encoding="utf-8") as problems:
            for line in problems:
                if listed >= MAX_PROBLEMS_IN_MANIFEST:
                    break
                fh.write(("\n  " if first else ",\n  ") + line.rstrip("\n"))
                first = False
                listed += 1
        fh.write("\n ],\n \"problems_listed\": %d\n}\n" % listed)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A split manifest, checked for the fields join-back and depersonalize rely on."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such manifest", field="manifest") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"{path}: not a JSON manifest", field="manifest") from None
    if not isinstance(doc, dict) or doc.get("qorgau_split_manifest") != MANIFEST_VERSION:
        raise InvalidInput(f"{path}: not a qorgau split manifest (version {MANIFEST_VERSION})", field="manifest")
    for key in ("pseudonym", "columns", "organization_id", "output"):
        if key not in doc:
            raise InvalidInput(f"{path}: the manifest has no {key!r}", field="manifest")
    return doc


# --- join back ----------------------------------------------------------------------------------------


@dataclass
class JoinReport:
    """What a join-back restored. Erased subjects come back as empty cells, counted by erasure date."""

    output: Path
    rows: int
    restored: int
    without_pseudonym: int
    unknown: int
    erased: int
    erased_on: dict[str, int]
    refused: int
    malformed: int  # rows of the input that could not be read (left out of the output)
    ambiguous_cells: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"output": str(self.output), "rows": self.rows, "restored": self.restored,
                "without_pseudonym": self.without_pseudonym, "unknown": self.unknown, "erased": self.erased,
                "erased_on": dict(sorted(self.erased_on.items())), "refused": self.refused,
                "malformed_left_out": self.malformed, "ambiguous_cells": self.ambiguous_cells,
                "seconds": round(self.seconds, 3)}


class _Restorer:
    """Builds join-back output rows: the original column order, identifying cells from the identities."""

    def __init__(self, manifest: dict[str, Any], dataset: Dataset, out_format: str) -> None:
        self.manifest = manifest
        self.dataset = dataset
        self.pcol = manifest["pseudonym"]["column"]
        if self.pcol not in dataset.columns:
            raise InvalidInput(f"{dataset.name} has no pseudonym column {self.pcol!r} (the manifest's)",
                               field="input")
        plan = [ColumnPlan.from_dict(d) for d in manifest["columns"]]
        self.plan = [p for p in plan if p.action != DROP]
        # The k-th column of a type takes the subject's k-th value of that type (when there are several).
        seen: Counter = Counter()
        self.slot: dict[str, tuple[str, int]] = {}
        for p in self.plan:
            if p.action == VAULT:
                self.slot[p.name] = (p.entity_type, seen[p.entity_type])  # type: ignore[assignment]
                seen[p.entity_type] += 1
        self.late = {k: v for k, v in (manifest.get("late_fields") or {}).items() if v not in (KEEP, DROP)}
        self._columns_of_type = Counter(t for t, _ in self.slot.values())
        for entity_type in self.late.values():
            self._columns_of_type[entity_type] = max(1, self._columns_of_type[entity_type])
        present = set(dataset.columns)
        self.columns = [p.name for p in self.plan if p.action == VAULT or p.name in present]
        self.extra = [c for c in dataset.columns if c != self.pcol and c not in {p.name for p in self.plan}]
        self.out_format = out_format
        self.ambiguous = 0
        self.schema: Any = None
        if out_format == "parquet":
            import pyarrow as pa

            original = _schema_from_b64(manifest["input_schema"]) if manifest.get("input_schema") else None
            in_schema = dataset.schema  # type: ignore[attr-defined]
            fields = []
            for name in self.columns:
                if name in self.slot:
                    fields.append(original.field(name) if original is not None and name in original.names
                                  else pa.field(name, pa.string()))
                else:
                    fields.append(in_schema.field(name))
            fields += [in_schema.field(name) for name in self.extra]
            self.schema = pa.schema(fields)

    def header(self) -> list[str]:
        return self.columns + self.extra

    def pseudonyms(self, batch: Batch) -> list[str | None]:
        if self.dataset.kind == "csv":
            at = self.dataset.columns.index(self.pcol)
            return [None if i in batch.bad else (row[at] or None) for i, row in enumerate(batch.rows)]
        if self.dataset.kind == "jsonl":
            return [None if i in batch.bad else (rec.get(self.pcol) or None) for i, rec in enumerate(batch.rows)]
        return [v or None for v in batch.table.column(self.dataset.columns.index(self.pcol)).to_pylist()]

    def value(self, identifiers: Mapping[str, Sequence[str]] | None, column: str) -> str | None:
        if identifiers is None:
            return None
        entity_type, k = self.slot.get(column) or (self.late[column], 0)
        values = identifiers.get(entity_type) or []
        if isinstance(values, str):
            values = [values]
        if not values:
            return None
        if len(values) > self._columns_of_type[entity_type]:
            self.ambiguous += 1  # the subject has more values of this type than the row has columns
        return values[k] if k < len(values) else None

    def rows(self, batch: Batch, identities: list[Mapping[str, Sequence[str]] | None]) -> Any:
        kind = self.dataset.kind
        if kind == "csv":
            index = {c: i for i, c in enumerate(self.dataset.columns)}
            out = []
            for i, row in enumerate(batch.rows):
                if i in batch.bad:
                    continue
                cells = [(self.value(identities[i], c) or "") if c in self.slot else row[index[c]]
                         for c in self.columns]
                cells += [row[index[c]] for c in self.extra]
                out.append(cells)
            return out
        if kind == "jsonl":
            out = []
            for i, record in enumerate(batch.rows):
                if i in batch.bad:
                    continue
                restored: dict[str, Any] = {}
                for c in self.columns:
                    if c in self.slot:
                        value = self.value(identities[i], c)
                        if value is not None:
                            restored[c] = value
                    elif c in record:
                        restored[c] = record[c]
                for key, value in record.items():
                    if key != self.pcol and key not in restored:
                        restored[key] = value
                for key in self.late:  # fields first seen after the sample: where they were is not known
                    value = self.value(identities[i], key)
                    if value is not None and key not in restored:
                        restored[key] = value
                out.append(restored)
            return out
        import pyarrow as pa

        table = batch.table
        arrays = []
        for name in self.columns + self.extra:
            if name in self.slot:
                texts = [self.value(identities[r], name) for r in range(batch.size)]
                arrays.append(_restore_array(texts, self.schema.field(name).type, name))
            else:
                arrays.append(table.column(self.dataset.columns.index(name)))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _restore_array(texts: list[str | None], target: Any, column: str) -> Any:
    """Identifier texts back into the column's original Arrow type (integer IINs, date-typed birth dates)."""
    import pyarrow as pa

    if pa.types.is_string(target) or pa.types.is_large_string(target):
        return pa.array(texts, type=target)
    if pa.types.is_dictionary(target):
        return pa.array(texts, type=pa.string()).dictionary_encode().cast(target)
    values: list[Any] = []
    for text in texts:
        if text is None:
            values.append(None)
            continue
        try:
            if pa.types.is_integer(target):
                values.append(int(text))
            elif pa.types.is_floating(target):
                values.append(float(text))
            elif pa.types.is_date(target):
                values.append(date.fromisoformat(text[:10]))
            elif pa.types.is_timestamp(target):
                values.append(datetime.fromisoformat(text))
            elif pa.types.is_decimal(target):
                values.append(Decimal(text))
            else:
                values.append(text)
        except (ValueError, ArithmeticError):
            values.append(None)  # an identifier stored in another spelling than the column's type can hold
    try:
        return pa.array(values, type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        raise DatasetError(f"column {column!r}: restored values do not fit its original type {target}",
                           field="input") from None


def join_back(
    input: str | Path,
    *,
    manifest: str | Path,
    output: str | Path,
    purpose: str,
    principal: Principal,
    platform: Platform,
    actor: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    vault: Any = None,
    on_progress: Callable[[SplitProgress], None] | None = None,
) -> JoinReport:
    """Re-identify a split dataset for a stated ``purpose`` (L-PD-SPLIT): identifying columns come back.

    Each batch's distinct pseudonyms go to :meth:`Vault.detokenize_many` (role checks, the
    re-identification checks and one audit entry per call are the vault's). A pseudonym of an erased
    subject gives empty identifying cells and is counted by erasure date ("erased on …"); an unknown
    pseudonym gives empty cells too. Rows and columns the analyst added or removed are tolerated: the
    output has the manifest's column order, columns not in the manifest appended at the end. The output
    (same format as the input) is written to a temporary file and moved into place when complete.
    """
    from ..core import audit
    from .service import ReidentificationRefused, SubjectErased, normalize_purpose, vault_for

    started = time.monotonic()
    purpose = normalize_purpose(purpose)  # a purpose code: it goes into the audit log, which is never erased
    principal.require(*_reidentify_roles())
    doc = read_manifest(manifest)
    output = Path(output)
    if output.exists():
        raise InvalidInput(f"{output} already exists; remove it or choose another output", field="output")
    org = int(doc["organization_id"])
    if principal.organization_id != org:
        raise InvalidInput("the manifest belongs to another organization's vault", field="manifest")
    dataset = open_dataset(input)
    out_format = FORMAT_BY_EXTENSION.get(output.suffix.lower())
    if out_format != dataset.kind:
        raise InvalidInput(f"the output must have the input's format ({dataset.kind})", field="output")
    restorer = _Restorer(doc, dataset, out_format)
    domain = doc["pseudonym"]["domain"]
    vault = vault or vault_for(platform)
    tmp = output.with_name("." + output.name + ".joining")
    if out_format == "csv":
        sink: _Output = CsvOutput(tmp, restorer.header(), delimiter=getattr(dataset, "delimiter", ","))
    elif out_format == "jsonl":
        sink = JsonlOutput(tmp)
    else:
        sink = _ParquetFileOutput(tmp, restorer.schema)
    rows = restored = without = unknown = erased = refused = malformed = 0
    erased_on: Counter = Counter()
    batches = iter(())
    try:
        batches = dataset.batches(batch_size)
        for batch in batches:
            pseudonyms = restorer.pseudonyms(batch)
            wanted = sorted({p for p in pseudonyms if p})
            found: dict[str, Any] = {}
            if wanted:
                with platform.db.transaction(org) as session:
                    found = vault.detokenize_many(session, wanted, domain=domain, purpose=purpose,
                                                  principal=principal, actor=actor)
            identities: list[Mapping[str, Sequence[str]] | None] = []
            for i, pseudonym in enumerate(pseudonyms):
                if i in batch.bad:
                    malformed += 1
                    identities.append(None)
                    continue
                rows += 1
                if pseudonym is None:
                    without += 1
                    identities.append(None)
                    continue
                result = found.get(pseudonym)
                if result is None:
                    unknown += 1
                    identities.append(None)
                elif isinstance(result, ReidentificationRefused):
                    refused += 1
                    identities.append(None)
                elif isinstance(result, SubjectErased):
                    erased += 1
                    when = getattr(result, "erased_at", None)
                    erased_on[when.date().isoformat() if when else "unknown date"] += 1
                    identities.append(None)
                else:
                    restored += 1
                    identities.append(result.identifiers)
            sink.append(restorer.rows(batch, identities))
            if on_progress is not None:
                on_progress(SplitProgress(rows, getattr(dataset, "rows_total", None), restored,
                                          unknown + erased + refused))
        sink.finish(output)
    except BaseException:
        batches.close()
        sink.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    seconds = time.monotonic() - started
    report = JoinReport(output=output, rows=rows, restored=restored, without_pseudonym=without, unknown=unknown,
                        erased=erased, erased_on=dict(erased_on), refused=refused, malformed=malformed,
                        ambiguous_cells=restorer.ambiguous, seconds=seconds)
    run = str(doc.get("run", ""))
    with platform.db.transaction(org) as session:
        audit.record(session, actor=actor or principal.actor, action=ACTION_JOIN, object_type="split_run",
                     object_id=run if re.fullmatch(r"[a-z]{1,64}", run) else "unknown", organization_id=org,
                     details={"purpose": purpose, "domain": domain, "rows": _wide(rows), "restored": _wide(restored),
                              "unknown": _wide(unknown), "erased": _wide(erased), "refused": _wide(refused),
                              "without_pseudonym": _wide(without)})
    return report


def _reidentify_roles() -> tuple[Any, ...]:
    from .service import REIDENTIFY_ROLES

    return REIDENTIFY_ROLES


class _ParquetFileOutput(_Output):
    """A Parquet file written batch by batch (join-back needs no checkpoints: it is re-run from the start)."""

    kind = "parquet"

    def __init__(self, path: Path, schema: Any) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self._fh = open(path, "wb")  # noqa: SIM115
        self._writer = pq.ParquetWriter(self._fh, schema)
        self._closed = False

    def append(self, record_batch: Any) -> None:
        self._writer.write_batch(record_batch)

    def sync(self) -> int:
        return 0

    def finish(self, final: Path) -> None:
        self._writer.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._closed = True
        os.replace(self.path, final)
        _fsync_dir(final.parent)

    def close(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._fh.close()
            self._closed = True
