"""``qorgau scan``: find personal data in files, directories, stdin and SQL databases.

A thin adapter over :func:`qorgau.discovery.scanning.scan_paths` and :mod:`qorgau.discovery.report`.
Registered by ``qorgau/cli/main.py`` as ``app.command("scan")(scan)``.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from ..discovery import report
from ..discovery.scanning import Place, ProgressUpdate, ScannerSpec, SourceResult, scan_paths
from ..discovery.sources import DEFAULT_SAMPLE_ROWS, KINDS_BY_EXTENSION, is_database_url
from ..discovery.types import EntityType

EXIT_CLEAN = 0
EXIT_FOUND = 1
EXIT_USAGE = 2
EXIT_FAILED = 4


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    sarif = "sarif"
    html = "html"


HELP = """Find personal data (IIN, BIN, phones, e-mails, cards, IBANs, documents, names, addresses …).

PATHS are files (.txt .log .csv .tsv .json .jsonl .xlsx .docx .pdf .parquet, other text files by
sniffing), directories (recursive; binary files are skipped with a note), [bold]-[/bold] for stdin, or
SQLAlchemy URLs ([bold]sqlite:///x.db[/bold], [bold]postgresql://…[/bold]; every table, --sample-rows rows
per column). Encodings are detected per file (UTF-8/16 with or without BOM, cp1251, KZ-1048).

[bold]JSON Lines contract[/bold]: with --text-field, every input must be a .jsonl file (or stdin) and the
output has exactly one line per input record, in input order, also with --workers:
{"id": <record's --id-field value, or the line number without --id-field>, "findings": [{"type",
"start", "end", "score", "category", "recognizer"}]} with offsets into that record's text field. A
record that is not JSON, is not an object, or whose text field is missing or not a string is still
written, with "findings": [] and an "error" naming the line and field (never the value); it counts as
a failure for the exit code. A record without the id field gets "id": null.

[bold]Exit code[/bold] (for CI pipelines; bits combine): 0 no personal data found, 1 personal data
found, 2 bad usage (unknown option, missing path), 4 some inputs could not be read or scanned
(the others are still reported), so 5 = found and some failed.
"""


def scan(
    paths: Annotated[list[str], typer.Argument(help="Files, directories, '-' for stdin, database URLs.",
                                               show_default=False)],
    text_field: Annotated[Optional[str], typer.Option("--text-field",
                          help="JSON Lines contract: the field holding each record's text.")] = None,
    id_field: Annotated[Optional[str], typer.Option("--id-field",
                        help="JSON Lines contract: the field holding each record's id.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o",
                      help="Write the report here (default: stdout).", dir_okay=False)] = None,
    fmt: Annotated[Optional[OutputFormat], typer.Option("--format", "-f",
                   help="table (default), json, jsonl, sarif or html; with --text-field: jsonl.")] = None,
    types: Annotated[Optional[list[str]], typer.Option("--types", "-t",
                     help="Only these entity types (repeatable or comma-separated: KZ_IIN,PHONE_NUMBER).")] = None,
    min_score: Annotated[float, typer.Option("--min-score", min=0.0, max=1.0,
                         help="Drop findings scored below this.")] = 0.5,
    identifiers_only: Annotated[bool, typer.Option("--identifiers-only",
                                help="Structured identifiers only (no names, addresses, birth dates): faster.")] = False,
    allow: Annotated[Optional[Path], typer.Option("--allow", exists=True, dir_okay=False,
                     help="Allow list file: values (or re:regexes) never reported.")] = None,
    deny: Annotated[Optional[Path], typer.Option("--deny", exists=True, dir_okay=False,
                    help="Deny list file: values (or re:regexes) always reported.")] = None,
    custom_recognizers: Annotated[Optional[Path], typer.Option("--custom-recognizers", exists=True, dir_okay=False,
                                  help="YAML file of custom recognizers (regex, validator, context).")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, max=256,
                       help="Scan in this many processes (the scanner is built once per process).")] = 1,
    sample_rows: Annotated[int, typer.Option("--sample-rows", min=1,
                           help="Databases: rows sampled per column.")] = DEFAULT_SAMPLE_ROWS,
    explain: Annotated[bool, typer.Option("--explain",
                       help="Add each score's explanation (pattern, validator, context words) to JSON output.")] = False,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress",
                        help="Progress bar on stderr (default: only when stderr is a terminal).")] = None,
    engine: Annotated[Optional[Engine], typer.Option("--engine",
                      help="local (default) or spark: the same detectors on Apache Spark over a CSV/Parquet/"
                           "JSONL file or directory, findings written as Parquet to --output.")] = None,
    spark_master: Annotated[str, typer.Option("--spark-master", help="Spark master URL (--engine spark).")]
    = "local[*]",
    text_columns: Annotated[Optional[list[str]], typer.Option("--text-column",
                            help="--engine spark: columns to scan (repeatable; default: all string columns).")] = None,
    id_column: Annotated[Optional[str], typer.Option("--id-column", help="--engine spark: the row id column.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="--engine spark: replace an existing output.")]
    = False,
    save: Annotated[bool, typer.Option("--save", help="Also record the results into the data map of the platform "
                                                      "(`qorgau init` first); the report is unchanged.")] = False,
    org: Annotated[Optional[str], typer.Option("--org", help="--save: the organization's BIN (default: the only "
                                                            "organization).")] = None,
) -> None:
    """Find personal data in files, directories, stdin and databases."""
    err = Console(stderr=True)
    if org is not None and not save:
        _usage(err, "--org is used with --save")
    if save and (engine is Engine.spark or "-" in paths):
        _usage(err, "--save records files and databases; not stdin ('-') or --engine spark")
    if engine is Engine.spark:
        spark_types = _parse_types(types, err, extra_allowed=custom_recognizers is not None or deny is not None)
        _scan_on_spark(err, paths, output, master=spark_master, text_columns=text_columns,
                       id_column=id_column, identifiers_only=identifiers_only, min_score=min_score,
                       overwrite=overwrite, entity_types=sorted(spark_types) if spark_types else None,
                       allow=_str(allow), deny=_str(deny), custom_recognizers=_str(custom_recognizers))
        return
    wanted = _parse_types(types, err, extra_allowed=custom_recognizers is not None or deny is not None)
    contract = text_field is not None
    if contract:
        if fmt not in (None, OutputFormat.jsonl):
            _usage(err, "--text-field writes the JSON Lines contract; --format must be jsonl (or omitted)")
        bad = [p for p in paths if p != "-" and (is_database_url(p) or KINDS_BY_EXTENSION.get(Path(p).suffix.lower()) != "jsonl")]
        if bad:
            _usage(err, f"--text-field needs .jsonl inputs (or '-'); not: {', '.join(bad[:3])}")
    elif id_field is not None:
        _usage(err, "--id-field is used with --text-field")
    if paths.count("-") > 1:
        _usage(err, "stdin ('-') can be given once")
    missing = [p for p in paths if p != "-" and not is_database_url(p) and not _exists(p)]
    if missing:
        _usage(err, f"no such file or directory: {', '.join(missing[:3])}")
    fmt = OutputFormat.jsonl if contract else (fmt or OutputFormat.table)

    spec = ScannerSpec(identifiers_only=identifiers_only, entity_types=tuple(sorted(wanted)) if wanted else None,
                       min_score=min_score, allow=_str(allow), deny=_str(deny), custom=_str(custom_recognizers))
    try:
        # Built here first: a bad list or recognizer file is a usage error before anything is read.
        scanner = spec()
    except (ValueError, OSError) as exc:
        _usage(err, f"cannot build the scanner: {type(exc).__name__}: {exc}")
    # One process: reuse that scanner. Several: each worker builds its own from the picklable spec.
    factory = (lambda: scanner) if workers == 1 else spec

    saver = _DataMapSaver.open(err, org) if save else None
    started = datetime.now(UTC)
    results: list[SourceResult] = []
    found = failed = False
    show_progress = progress if progress is not None else err.is_terminal
    with _opened(output) as sink, _progress_bar(err, show_progress) as on_progress:
        on_place = None
        if fmt is OutputFormat.table:
            def on_place(result: SourceResult, place: Place) -> None:
                pass  # the table shows counts only: don't keep places (flat memory on huge inputs)
        elif fmt is OutputFormat.jsonl:
            def on_place(result: SourceResult, place: Place) -> None:
                if contract:
                    sink.write(report.contract_line(place, explain=explain) + "\n")
                elif place.findings:
                    sink.write(report.place_line(result, place, explain=explain) + "\n")
        if saver is not None:
            on_place = saver.collector(on_place)
        for result in scan_paths(paths, factory, workers=workers, sample_rows=sample_rows, text_field=text_field,
                                 id_field=id_field, types=wanted, min_score=min_score,
                                 snippets=fmt is OutputFormat.html, on_place=on_place, on_progress=on_progress):
            found |= result.found
            failed |= result.failed
            for error in result.errors[:20]:
                err.print(f"[red]error[/red] {_escape(result.source)}: {_escape(error)}", highlight=False)
            if len(result.errors) > 20:
                err.print(f"[red]error[/red] {_escape(result.source)}: … {len(result.errors) - 20} more", highlight=False)
            if result.skipped:
                err.print(f"[yellow]skipped[/yellow] {_escape(result.source)}: {_escape(result.skipped)}", highlight=False)
            if saver is not None:
                failed |= not saver.record(result)
            results.append(result)
        _write_report(fmt, results, sink, started=started, explain=explain, to_terminal=output is None)
    if saver is not None:
        saver.summary()
    code = (EXIT_FOUND if found else 0) | (EXIT_FAILED if failed else 0)
    raise typer.Exit(code)


def _write_report(fmt: OutputFormat, results: list[SourceResult], sink: IO[str], *, started: datetime,
                  explain: bool, to_terminal: bool) -> None:
    if fmt is OutputFormat.jsonl:
        return  # written while scanning
    if fmt is OutputFormat.table:
        console = Console(file=sink, width=None if to_terminal else 160, soft_wrap=False)
        console.print(report.summary_table(results))
    elif fmt is OutputFormat.json:
        json.dump(report.report_dict(results, explain=explain, started=started), sink, ensure_ascii=False, indent=2,
                  default=str)
        sink.write("\n")
    elif fmt is OutputFormat.sarif:
        json.dump(report.sarif(results), sink, ensure_ascii=False, indent=2, default=str)
        sink.write("\n")
    elif fmt is OutputFormat.html:
        sink.write(report.html_report(results, started=started))


def _parse_types(types: list[str] | None, err: Console, *, extra_allowed: bool) -> frozenset[str] | None:
    """Built-in type names; with custom recognizers or a deny list, their own type names too."""
    if not types:
        return None
    names = {t.strip().upper() for item in types for t in item.split(",") if t.strip()}
    known = {t.value for t in EntityType}
    unknown = sorted(n for n in names - known if not (extra_allowed and re.fullmatch(r"[A-Z][A-Z0-9_]*", n)))
    if unknown:
        _usage(err, f"unknown type(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return frozenset(names)


class Engine(str, enum.Enum):
    local = "local"
    spark = "spark"


def _scan_on_spark(err: Console, paths: list[str], output: Path | None, **options: Any) -> None:
    """``--engine spark``: one input (file or directory), findings as Parquet, a JSON summary on stdout."""
    if len(paths) != 1 or paths[0] == "-" or is_database_url(paths[0]):
        _usage(err, "--engine spark takes one CSV/Parquet/JSONL file or directory")
    if output is None:
        _usage(err, "--engine spark writes Parquet: give --output DIR")
    from ..discovery.spark import SparkScanError, run_spark_scan

    try:
        result = run_spark_scan(paths[0], str(output), **options)
    except SparkScanError as exc:
        _usage(err, str(exc))
    except ImportError:
        _usage(err, "--engine spark needs PySpark: pip install 'qorgau[spark]' (and Java 17)")
    typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    raise typer.Exit(EXIT_FOUND if result.findings else EXIT_CLEAN)


def _usage(err: Console, message: str) -> None:
    err.print(f"[red]usage error:[/red] {_escape(message)}", highlight=False)
    raise typer.Exit(EXIT_USAGE)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _exists(path: str) -> bool:
    try:
        return Path(path).exists() or Path(path).is_symlink()
    except OSError:
        return False


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


@contextlib.contextmanager
def _opened(output: Path | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with output.open("w", encoding="utf-8", newline="\n") as fh:
        yield fh


class _RateColumn(ProgressColumn):
    """Bytes/s and rows/s of the whole scan so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0:
            return Text("")
        rows = task.fields.get("rows", 0)
        return Text(f"{_human(task.completed / elapsed)}B/s  {_human(rows / elapsed)} rows/s", style="cyan")


def _human(n: float) -> str:
    for unit in ("", "k", "M", "G"):
        if n < 1000:
            return f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} T"


@contextlib.contextmanager
def _progress_bar(err: Console, enabled: bool) -> Iterator[Any]:
    """A Rich progress display on stderr; yields the ``on_progress`` callback (or None when disabled)."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("[bold]{task.fields[source]}", justify="left"), BarColumn(bar_width=None),
               TextColumn("{task.fields[sources]} source(s)  {task.fields[mb]} MB"), _RateColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False, refresh_per_second=4) as bar:
        task = bar.add_task("scan", total=None, source="", sources=0, rows=0, mb="0.0")
        state = {"bytes": 0, "rows": 0, "sources": 0}

        def on_progress(update: ProgressUpdate) -> None:
            state["bytes"] += update.bytes
            state["rows"] += update.rows
            state["sources"] += update.finished
            name = update.source if len(update.source) <= 40 else "…" + update.source[-39:]
            bar.update(task, completed=state["bytes"], rows=state["rows"], sources=state["sources"],
                       source=_escape(name), mb=f"{state['bytes'] / 1e6:.1f}")

        yield on_progress


scan.__doc__ = HELP  # the command's --help: inputs, the JSON Lines contract, exit codes


class _DataMapSaver:
    """``--save``: every source goes into the data map in its own transaction as soon as it is scanned.

    The data map's collector rides along with the report's own ``on_place`` (or, for reports that keep
    places, keeps them exactly as ``scan_paths`` would), so the report's bytes do not change."""

    def __init__(self, err: Console, platform: Any, organization_id: int, actor: str) -> None:
        self.err, self.platform, self.organization_id, self.actor = err, platform, organization_id, actor
        self.saved = self.failed = 0
        self._collector: Any = None

    @classmethod
    def open(cls, err: Console, org: str | None) -> _DataMapSaver:
        from ..core import auth
        from ..core.errors import QorgauError
        from ..core.keys import KeyFileError
        from ..core.platform import NotInitialized, Platform
        from ..core.settings import SettingsError, get_settings
        from .main import CLI_ACTOR

        try:
            platform = Platform.open(get_settings())
        except (NotInitialized, KeyFileError, SettingsError) as exc:
            _usage(err, f"--save needs the platform: {exc}")
        try:
            with platform.db.reader() as session:
                if org is not None:
                    found = auth.find_organization_by_bin(session, org)
                    if found is None:
                        raise QorgauError("no organization with this BIN; see `qorgau orgs list`", field="--org")
                    organization_id = found.id
                else:
                    orgs = [o for o in auth.list_organizations(session) if not o.is_authority]  # operators only
                    if len(orgs) != 1:
                        raise QorgauError(f"{len(orgs)} operators exist; name one with --org BIN", field="--org")
                    organization_id = orgs[0].id
        except QorgauError as exc:
            platform.close()
            _usage(err, exc.message)
        return cls(err, platform, organization_id, CLI_ACTOR)

    def collector(self, then: Callable[[SourceResult, Place], None] | None) -> Callable[[SourceResult, Place], None]:
        from ..discovery.datamap import DataMapCollector

        def keep(result: SourceResult, place: Place) -> None:  # what scan_paths does without on_place
            if place.findings:
                result.places.append(place)

        self._collector = DataMapCollector(then=then or keep)
        return self._collector

    def record(self, result: SourceResult) -> bool:
        """Record one source; False (and a message naming the source) if the database refused it."""
        from ..core.errors import QorgauError
        from ..discovery.datamap import record_result

        try:
            with self.platform.db.transaction(self.organization_id) as session:
                saved = record_result(session, result, actor=self.actor, tally=self._collector.take(result))
        except (QorgauError, SQLAlchemyError) as exc:
            message = exc.message if isinstance(exc, QorgauError) else f"database error ({type(exc).__name__})"
            self.err.print(f"[red]error[/red] {_escape(result.source)}: not saved to the data map: {_escape(message)}",
                           highlight=False)
            self.failed += 1
            return False
        self.saved += saved is not None
        return True

    def summary(self) -> None:
        self.err.print(f"data map: {self.saved} source(s) saved for organization {self.organization_id}"
                       + (f", {self.failed} not saved" if self.failed else ""), highlight=False)
        self.platform.close()
