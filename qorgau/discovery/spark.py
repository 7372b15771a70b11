"""Discovery at scale: the same detectors on Apache Spark (``qorgau scan --engine spark``).

Reads CSV, Parquet or JSON Lines files (or directories of them), runs the very :class:`Scanner` the
local scan uses through ``DataFrame.mapInPandas``, and writes the findings as Parquet, one row per
finding::

    source_file  row_id  column  type  start  end  score  category  recognizer

``start``/``end`` are Python character offsets into that cell's text. The matched text is never
written: a findings table can be shared with the people who must fix the data without handing them the
data (L-PD-SPLIT: the map of where identifiers live is not itself a copy of them).

Why the scanner is built once per Python worker process: ``Scanner.default()`` loads Natasha's
embeddings and the name lexicons (about a second and tens of MB). Building it per row or per Arrow
batch would cost more than the scan itself. The function ``mapInPandas`` runs looks the scanner up in a
module-level cache (:func:`_worker_scanner`); Spark reuses Python workers between tasks
(``spark.python.worker.reuse``), so each worker process builds it at most once per configuration. The
report says how many builds happened in how many processes (an accumulator), so this is observable
on a real cluster, not only in tests.

The scan options of the local engine work here too: ``entity_types``, an allow list, a deny list and
custom recognizers (the files of ``qorgau scan --allow/--deny/--custom-recognizers``). The files are
read and checked on the driver — a bad file fails before Spark starts, with the local engine's message —
and their *contents* travel to the executors in a :class:`ScanRecipe` (a broadcast variable, sent once per
executor), because on a cluster the executors cannot see the driver's files. The recipe's digest is the
cache key, so a worker builds one scanner per distinct configuration, never per row or batch.

Totals in :class:`SparkScanReport` come from an aggregation over the written Parquet (a small
``groupBy`` result), never from collecting the findings to the driver.

Install with the ``spark`` extra (PySpark needs Java 17+). The session this module builds is offline
and small: no UI, driver bound to 127.0.0.1, few shuffle partitions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pyspark is an optional extra; importing this module must not need it
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from .engine import Scanner

InputFormat = Literal["csv", "parquet", "jsonl"]

FORMAT_BY_EXTENSION: dict[str, str] = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
                                       ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

# Names of the helper columns inside the job; text columns are renamed to positional names too, so a
# column called "row_id" or "a.b" in the input can never clash or need quoting.
_SOURCE = "__qorgau_source_file"
_ROW = "__qorgau_row_id"

FINDINGS_SCHEMA_DDL = ("source_file string, row_id string, column string, type string, start int, "
                       "end int, score double, category string, recognizer string")


class SparkScanError(Exception):
    """The Spark scan could not start or run. Names paths and columns, never cell values."""


@dataclass(frozen=True, slots=True)
class SparkScanReport:
    """What a Spark scan found, aggregated; the findings themselves are in ``output_path`` (Parquet).

    ``column_summary`` maps each scanned column to its counts per entity type — the shape the data map
    needs (which columns hold which identifiers). ``scanner_builds``/``worker_processes`` show that the
    scanner was built once per Python worker, not per row or batch.
    """

    output_path: str
    input_format: str
    columns: tuple[str, ...]
    rows_scanned: int
    findings: int
    counts_by_type: dict[str, int] = field(default_factory=dict)
    counts_by_category: dict[str, int] = field(default_factory=dict)
    column_summary: dict[str, dict[str, int]] = field(default_factory=dict)
    scanner_builds: int = 0
    worker_processes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"output_path": self.output_path, "input_format": self.input_format,
                "columns": list(self.columns), "rows_scanned": self.rows_scanned,
                "findings": self.findings, "counts_by_type": dict(self.counts_by_type),
                "counts_by_category": dict(self.counts_by_category),
                "column_summary": {c: dict(t) for c, t in self.column_summary.items()},
                "scanner_builds": self.scanner_builds, "worker_processes": self.worker_processes}


# --- the scanner's recipe (driver → executors) -----------------------------------------------------------


@dataclass(frozen=True)
class ScanRecipe:
    """Everything an executor needs to build the scanner, as plain data (picklable, no file paths).

    ``allow``/``deny`` hold the list files' entries as read on the driver (``deny_type`` is the entity
    type of a plain deny list), ``custom`` the parsed YAML of custom recognizers; ``*_source`` are the
    file names, used in error messages exactly as the local engine uses them. ``repr`` shows sizes only:
    a deny list may hold leaked identifiers.
    """

    identifiers_only: bool = False
    min_score: float = 0.5
    entity_types: tuple[str, ...] | None = None
    allow: tuple[str, ...] | None = None
    allow_source: str = "allow"
    deny: tuple[str, ...] | dict[str, list[str]] | None = None
    deny_type: str | None = None
    deny_source: str = "deny"
    custom: Any = None
    custom_source: str = "<custom>"

    @classmethod
    def from_files(cls, *, identifiers_only: bool = False, min_score: float = 0.5,
                   entity_types: Sequence[str] | None = None, allow: str | None = None, deny: str | None = None,
                   custom_recognizers: str | None = None) -> ScanRecipe:
        """Read and check the list and recognizer files here, on the driver; errors name the file."""
        from .custom import CustomRecognizerError, load_custom_recognizers
        from .lists import AllowList, DenyList, ListError, _read_list_file

        options: dict[str, Any] = {"identifiers_only": identifiers_only, "min_score": float(min_score),
                                   "entity_types": tuple(sorted(set(entity_types))) if entity_types else None}
        try:
            if allow is not None:
                AllowList.from_file(allow)  # the local engine's checks and messages
                entries, _ = _read_list_file(Path(allow))
                options.update(allow=tuple(str(e) for e in entries), allow_source=Path(allow).name)
            if deny is not None:
                DenyList.from_file(deny)
                entries, file_type = _read_list_file(Path(deny))
                options.update(deny=({str(k): [str(v) for v in vs] for k, vs in entries.items()}
                                     if isinstance(entries, dict) else tuple(str(e) for e in entries)),
                               deny_type=file_type, deny_source=Path(deny).name)
            if custom_recognizers is not None:
                import yaml

                load_custom_recognizers(custom_recognizers)
                data = yaml.safe_load(Path(custom_recognizers).read_text(encoding="utf-8-sig"))
                options.update(custom=data, custom_source=Path(custom_recognizers).name)
        except (ListError, CustomRecognizerError) as exc:
            raise SparkScanError(str(exc)) from None
        return cls(**options)

    @functools.cached_property
    def key(self) -> str:
        """A digest of the whole configuration: the worker cache's key (computed once per recipe)."""
        blob = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:32]

    def build(self) -> Scanner:
        from .engine import Scanner
        from .recognizers import default_recognizers

        options: dict[str, Any] = {"min_score": self.min_score}
        if self.entity_types is not None:
            options["entity_types"] = self.entity_types
        if self.allow is not None:
            from .lists import AllowList

            options["allow"] = AllowList(self.allow, source=self.allow_source)
        if self.deny is not None:
            from .lists import DEFAULT_DENY_TYPE, DenyList

            options["deny"] = DenyList(self.deny, entity_type=self.deny_type or DEFAULT_DENY_TYPE,
                                       source=self.deny_source)
        recognizers = list(default_recognizers(include_nlp=not self.identifiers_only))
        if self.custom is not None:
            from .custom import custom_recognizers_from_dict

            recognizers.extend(custom_recognizers_from_dict(self.custom, source=self.custom_source))
        return Scanner(recognizers, **options)

    def __repr__(self) -> str:
        deny = len(self.deny) if self.deny is not None else 0
        return (f"ScanRecipe(identifiers_only={self.identifiers_only}, min_score={self.min_score}, "
                f"entity_types={self.entity_types}, allow={len(self.allow or ())}, deny={deny}, "
                f"custom={self.custom is not None})")


# --- on the executors -------------------------------------------------------------------------------

# One scanner per recipe (its digest) per Python worker process; see the module docstring.
_SCANNERS: dict[str, Scanner] = {}
BUILDS: dict[str, int] = {}  # constructions in this process by recipe key, for the report and tests


def _worker_scanner(recipe: ScanRecipe, builds: Any = None) -> Scanner:
    """This process's scanner for the recipe, built on first use and reused afterwards."""
    key = recipe.key
    scanner = _SCANNERS.get(key)
    if scanner is None:
        scanner = recipe.build()
        _SCANNERS[key] = scanner
        BUILDS[key] = BUILDS.get(key, 0) + 1
        if builds is not None:
            builds.add({os.getpid(): 1})
    elif builds is not None:
        builds.add({os.getpid(): 0})  # record that this process ran a task, without a build
    return scanner


def _scan_column(scanner: Scanner, column: str, values: list[Any], sources: list[Any],
                 row_ids: list[Any], out: dict[str, list[Any]]) -> None:
    """The hot loop: scan every non-empty cell of one column of a batch, append findings to ``out``."""
    o_source, o_row, o_col = out["source_file"], out["row_id"], out["column"]
    o_type, o_start, o_end = out["type"], out["start"], out["end"]
    o_score, o_cat, o_rec = out["score"], out["category"], out["recognizer"]
    scan = scanner.scan
    for i, value in enumerate(values):
        if value is None or value != value:  # None or NaN
            continue
        text = value if isinstance(value, str) else str(value)
        if not text:
            continue
        for f in scan(text):
            o_source.append(sources[i])
            o_row.append(row_ids[i])
            o_col.append(column)
            o_type.append(f.type)
            o_start.append(f.start)
            o_end.append(f.end)
            o_score.append(round(f.score, 4))
            o_cat.append(f.category)
            o_rec.append(f.recognizer)


def _findings_frame(out: dict[str, list[Any]]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(out, columns=list(out))
    return frame.astype({"start": "int32", "end": "int32", "score": "float64"})


def _make_scan_batches(names: list[str], recipe: Any, builds: Any):
    """The function ``mapInPandas`` runs: positional text columns ``c0…`` are reported by real name.

    ``recipe`` is a broadcast :class:`ScanRecipe` (its value is fetched once per executor), or the recipe.
    """

    def scan_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        value = recipe.value if hasattr(recipe, "value") else recipe
        scanner = _worker_scanner(value, builds)
        for batch in batches:
            out: dict[str, list[Any]] = {k: [] for k in ("source_file", "row_id", "column", "type", "start",
                                                         "end", "score", "category", "recognizer")}
            sources = batch[_SOURCE].tolist()
            row_ids = batch[_ROW].tolist()
            for i, name in enumerate(names):
                _scan_column(scanner, name, batch[f"c{i}"].tolist(), sources, row_ids, out)
            if out["type"]:
                yield _findings_frame(out)

    return scan_batches


class PidCounts:
    """Accumulator param summing ``{pid: builds}`` dicts (duck-typed ``AccumulatorParam``, no import)."""

    def zero(self, value: dict[int, int]) -> dict[int, int]:
        return {}

    def addInPlace(self, a: dict[int, int], b: dict[int, int]) -> dict[int, int]:  # noqa: N802 (Spark's name)
        for pid, n in b.items():
            a[pid] = a.get(pid, 0) + n
        return a


# --- on the driver ------------------------------------------------------------------------------------


def build_session(master: str = "local[*]", app_name: str = "qorgau-discovery") -> SparkSession:
    """A small, offline session: no UI, driver on 127.0.0.1, workers on this interpreter, workers reused."""
    from pyspark.sql import SparkSession

    # PySpark starts workers with $PYSPARK_PYTHON (default "python3", which may not see qorgau); when the
    # caller has not chosen one, workers run this interpreter, so they import the same qorgau as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (SparkSession.builder.master(master).appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.python.worker.reuse", "true")
            .config("spark.pyspark.python", sys.executable)
            .config("spark.pyspark.driver.python", sys.executable)
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate())


def infer_input_format(input_path: str) -> str:
    """``csv``/``parquet``/``jsonl`` from a file's extension or the files in a local directory."""
    path = Path(input_path)
    if path.is_dir():
        kinds = {FORMAT_BY_EXTENSION[p.suffix.lower()] for p in _data_files(path)
                 if p.suffix.lower() in FORMAT_BY_EXTENSION}
        if len(kinds) == 1:
            return kinds.pop()
        if not kinds:
            raise SparkScanError(f"{input_path}: no .csv, .tsv, .parquet or .jsonl files found; "
                                 "pass input_format")
        listed = ", ".join(sorted(kinds))
        raise SparkScanError(f"{input_path}: mixed file kinds ({listed}); pass input_format")
    kind = FORMAT_BY_EXTENSION.get(path.suffix.lower())
    if kind is None:
        raise SparkScanError(f"{input_path}: cannot tell the format from the name; pass input_format")
    return kind


def _data_files(directory: Path) -> Iterator[Path]:
    """Files under ``directory`` that Spark would read (not ``_SUCCESS``, ``.crc`` or hidden files)."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        for name in files:
            if not name.startswith((".", "_")):
                yield Path(root) / name


def _read(spark: SparkSession, input_path: str, input_format: str) -> DataFrame:
    """Everything read as written: CSV cells stay strings so an IIN keeps its leading zeros."""
    reader = spark.read
    path = Path(input_path)
    is_dir = path.is_dir()
    if is_dir:
        reader = reader.option("recursiveFileLookup", "true")
    if input_format == "csv":
        tsv = (path.suffix.lower() == ".tsv" or
               (is_dir and any(p.suffix.lower() == ".tsv" for p in _data_files(path))))
        reader = (reader.option("header", "true").option("multiLine", "true").option("escape", '"')
                  .option("inferSchema", "false").option("sep", "\t" if tsv else ","))
        if is_dir:
            reader = reader.option("pathGlobFilter", "*.tsv" if tsv else "*.csv")
        return reader.csv(input_path)
    if input_format == "parquet":
        if is_dir:
            reader = reader.option("pathGlobFilter", "*.parquet")
        return reader.parquet(input_path)
    if input_format == "jsonl":
        return reader.option("mode", "PERMISSIVE").json(input_path)
    raise SparkScanError(f"unknown input format {input_format!r}: use csv, parquet or jsonl")


def _text_columns(df: DataFrame, requested: list[str] | None, id_column: str | None) -> list[str]:
    from pyspark.sql.types import StringType

    present = {f.name for f in df.schema.fields}
    if requested is not None:
        missing = [c for c in requested if c not in present]
        if missing:
            raise SparkScanError(f"text columns not in the input: {', '.join(missing)}")
        return list(requested)
    return [f.name for f in df.schema.fields
            if isinstance(f.dataType, StringType) and f.name != id_column and f.name != "_corrupt_record"]


def run_spark_scan(input_path: str, output_path: str, *, input_format: InputFormat | None = None,
                   text_columns: list[str] | None = None, id_column: str | None = None,
                   identifiers_only: bool = False, min_score: float = 0.5, master: str = "local[*]",
                   spark: SparkSession | None = None, overwrite: bool = False,
                   entity_types: Sequence[str] | None = None, allow: str | None = None, deny: str | None = None,
                   custom_recognizers: str | None = None) -> SparkScanReport:
    """Scan CSV/Parquet/JSON Lines at ``input_path`` on Spark; write findings Parquet to ``output_path``.

    ``text_columns`` defaults to every string column (except ``id_column``); named non-string columns
    are scanned as their string form. ``row_id`` is ``id_column``'s value as a string, or a
    ``monotonically_increasing_id`` (unique, not consecutive) when there is none. A ``spark`` session
    passed in is used and left running; otherwise one is built on ``master`` and stopped at the end.
    An existing ``output_path`` is an error unless ``overwrite`` (Spark then replaces the directory).

    ``entity_types``, ``allow``, ``deny`` and ``custom_recognizers`` (file paths on the driver) are the
    local engine's options (:class:`~qorgau.discovery.scanning.ScannerSpec`), with the same file formats
    and the same results; the files' contents are shipped to the executors (:class:`ScanRecipe`).
    """
    if not 0.0 <= min_score <= 1.0:
        raise SparkScanError("min_score must be between 0 and 1")
    recipe = ScanRecipe.from_files(identifiers_only=identifiers_only, min_score=min_score, entity_types=entity_types,
                                   allow=allow, deny=deny, custom_recognizers=custom_recognizers)
    kind = input_format or infer_input_format(input_path)
    if kind not in ("csv", "parquet", "jsonl"):
        raise SparkScanError(f"unknown input format {kind!r}: use csv, parquet or jsonl")
    if not overwrite and "://" not in output_path and Path(output_path).exists():
        raise SparkScanError(f"{output_path}: already exists; pass overwrite=True to replace it")
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()  # a caller's session is used, never stopped
    own_session = spark is None
    session = build_session(master) if spark is None else spark
    try:
        return _run(session, input_path, output_path, kind, text_columns, id_column, recipe, overwrite)
    finally:
        if own_session:
            session.stop()


def _run(spark: SparkSession, input_path: str, output_path: str, kind: str, text_columns: list[str] | None,
         id_column: str | None, recipe: ScanRecipe, overwrite: bool) -> SparkScanReport:
    from pyspark.sql import functions as F

    df = _read(spark, input_path, kind)
    if id_column is not None and id_column not in df.columns:
        raise SparkScanError(f"id column not in the input: {id_column}")
    names = _text_columns(df, text_columns, id_column)
    row_id = (F.col(f"`{id_column}`").cast("string") if id_column is not None
              else F.monotonically_increasing_id().cast("string"))
    prepared = df.select(F.input_file_name().alias(_SOURCE), row_id.alias(_ROW),
                         *(F.col(f"`{n}`").cast("string").alias(f"c{i}") for i, n in enumerate(names)))
    builds = spark.sparkContext.accumulator({}, PidCounts())
    shipped = spark.sparkContext.broadcast(recipe)
    try:
        findings = prepared.mapInPandas(_make_scan_batches(names, shipped, builds), schema=FINDINGS_SCHEMA_DDL)
        findings.write.mode("overwrite" if overwrite else "errorifexists").parquet(output_path)
    finally:
        shipped.unpersist()

    rows = df.count()
    written = spark.read.parquet(output_path)
    per_column: dict[str, dict[str, int]] = {}
    by_type: dict[str, int] = {}
    by_category: dict[str, int] = {}
    total = 0
    for r in written.groupBy("column", "type", "category").count().collect():
        types = per_column.setdefault(r["column"], {})
        types[r["type"]] = types.get(r["type"], 0) + r["count"]
        by_type[r["type"]] = by_type.get(r["type"], 0) + r["count"]
        by_category[r["category"]] = by_category.get(r["category"], 0) + r["count"]
        total += r["count"]
    pid_builds: dict[int, int] = builds.value
    return SparkScanReport(
        output_path=output_path, input_format=kind, columns=tuple(names), rows_scanned=rows, findings=total,
        counts_by_type=dict(sorted(by_type.items())), counts_by_category=dict(sorted(by_category.items())),
        column_summary={c: dict(sorted(t.items())) for c, t in sorted(per_column.items())},
        scanner_builds=sum(pid_builds.values()), worker_processes=len(pid_builds))
