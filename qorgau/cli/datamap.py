"""``qorgau jobs`` (background scan jobs) and ``qorgau datamap`` (where personal data lives).

Thin adapters over :mod:`qorgau.discovery.jobs` and :mod:`qorgau.discovery.datamap`, registered by
``qorgau/cli/main.py``. Commands that change something name the organization by its BIN (``--org``);
reading commands without ``--org`` see every organization (the CLI is the installation's operator).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..discovery import datamap, jobs
from ..discovery.sources import DEFAULT_SAMPLE_ROWS

jobs_app = typer.Typer(help="Background scan jobs: scan server paths and databases into the data map.",
                       no_args_is_help=True)
datamap_app = typer.Typer(help="The data map: which sources and fields hold personal data, of which kinds.",
                          no_args_is_help=True)

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
Org = Annotated[Optional[str], typer.Option("--org", help="The organization's BIN.")]
RequiredOrg = Annotated[str, typer.Option("--org", help="The organization's BIN.")]


def _friendly(fn: F) -> F:
    """``main.friendly_errors`` (imported when called: main imports this module)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .main import friendly_errors

        return friendly_errors(fn)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _platform() -> Any:
    from .main import _open

    return _open()


def _actor() -> str:
    from .main import CLI_ACTOR

    return CLI_ACTOR


def _org(platform: Any, bin_: str | None) -> int | None:
    if bin_ is None:
        return None
    from .main import _org_id

    with platform.db.reader() as session:
        return _org_id(session, bin_)


@contextlib.contextmanager
def _read(platform: Any, bin_: str | None) -> Iterator[Any]:
    organization_id = _org(platform, bin_)
    with platform.db.reader(organization_id) as session:
        yield session


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


# --- jobs ---------------------------------------------------------------------------------------


@jobs_app.command("submit")
@_friendly
def jobs_submit(
    sources: Annotated[list[str], typer.Argument(help="Absolute paths under a scan root, database URLs.",
                                                 show_default=False)],
    org: RequiredOrg,
    types: Annotated[Optional[str], typer.Option("--types", "-t", help="Only these entity types (comma-separated).")]
    = None,
    min_score: Annotated[float, typer.Option("--min-score", min=0.0, max=1.0, help="Drop findings below this.")] = 0.5,
    sample_rows: Annotated[int, typer.Option("--sample-rows", min=1, help="Databases: rows sampled per column.")]
    = DEFAULT_SAMPLE_ROWS,
    identifiers_only: Annotated[bool, typer.Option("--identifiers-only", help="Structured identifiers only.")] = False,
    text_field: Annotated[Optional[str], typer.Option("--text-field", help="JSON Lines: the text field.")] = None,
    id_field: Annotated[Optional[str], typer.Option("--id-field", help="JSON Lines: the id field.")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Scanner processes for this job.")] = 1,
) -> None:
    """Queue a scan of server paths and databases; a worker (`qorgau serve` or `qorgau jobs worker`) runs it."""
    platform = _platform()
    organization_id = _org(platform, org)
    options = {"types": types, "min_score": min_score, "sample_rows": sample_rows,
               "identifiers_only": identifiers_only, "text_field": text_field, "id_field": id_field,
               "workers": workers}
    with platform.db.transaction(organization_id) as session:
        job = jobs.submit(platform, session, actor=_actor(), sources=sources, options=options)
        job_id, shown = job.id, list(job.sources)
    out.print(f"scan job {job_id} queued: {escape(', '.join(shown))}", highlight=False)


@jobs_app.command("list")
@_friendly
def jobs_list(
    org: Org = None,
    status: Annotated[Optional[str], typer.Option(help="queued, running, succeeded, failed or cancelled.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
) -> None:
    """List scan jobs with their progress."""
    platform = _platform()
    table = Table("id", "org", "status", "sources", "done/failed", "scanned", "findings", "created (UTC)", "error")
    with _read(platform, org) as session:
        rows, total = jobs.list_jobs(session, status=status, limit=limit)
        for j in rows:
            table.add_row(str(j.id), str(j.organization_id), j.status, escape(", ".join(j.sources)[:80]),
                          f"{j.sources_done}/{j.sources_failed}", _mb(j.bytes_scanned), str(j.findings),
                          j.created_at.strftime("%Y-%m-%d %H:%M:%S"), escape((j.error or "")[:60]))
    out.print(table)
    if total > len(rows):
        out.print(f"{len(rows)} of {total} shown")


@jobs_app.command("show")
@_friendly
def jobs_show(job_id: int, org: Org = None) -> None:
    """Show one scan job as JSON (inputs in display form: database URLs without passwords)."""
    platform = _platform()
    with _read(platform, org) as session:
        job = jobs.get_job(session, job_id)
        doc = {**jobs.job_dict(job), "organization_id": job.organization_id, "worker": job.worker}
    out.print_json(json.dumps(doc, ensure_ascii=False))


@jobs_app.command("cancel")
@_friendly
def jobs_cancel(job_id: int, org: Org = None) -> None:
    """Cancel a job: a queued one at once, a running one between two chunks (what it recorded stays)."""
    platform = _platform()
    with platform.db.transaction(_org(platform, org)) as session:
        job = jobs.cancel(platform, session, job_id, actor=_actor())
        status = job.status
    out.print(f"scan job {job_id}: {'cancelled' if status == 'cancelled' else 'cancel requested'}")


@jobs_app.command("worker")
@_friendly
def jobs_worker(
    once: Annotated[bool, typer.Option("--once", help="Run at most one queued job, then exit.")] = False,
    name: Annotated[Optional[str], typer.Option(help="Worker name in job rows (default host:pid).")] = None,
    poll_seconds: Annotated[float, typer.Option(min=0.1, max=60, help="How often to look for queued jobs.")] = 2.0,
) -> None:
    """Run scan jobs until Ctrl-C (or SIGTERM): a job in progress goes back to the queue for the next worker."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    platform = _platform()
    stop = threading.Event()
    worker = jobs.ScanWorker(platform, name=name, poll_seconds=poll_seconds, stop=stop)

    def on_signal(signum: int, _frame: Any) -> None:
        err.print("stopping: the job in progress goes back to the queue (press Ctrl-C again to abort)")
        stop.set()
        jobs.wake_workers()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_signal), signal.signal(signal.SIGTERM, on_signal)
    try:
        if once:
            worker.start_up()
            job_id = worker.run_once()
            out.print(f"scan job {job_id} done" if job_id is not None else "no job queued")
            return
        err.print(f"scan worker {escape(worker.name)} waiting for jobs (Ctrl-C to stop)")
        worker.run_forever()
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


# --- the data map -------------------------------------------------------------------------------


def _filters(kind: str | None, category: str | None, entity_type: str | None, sensitive: bool | None,
             status: str | None, search: str | None) -> datamap.SourceFilter:
    if category is not None and category not in datamap.CATEGORIES:
        from ..core.errors import InvalidInput

        raise InvalidInput(f"category must be one of {', '.join(datamap.CATEGORIES)}", field="--category")
    return datamap.SourceFilter(kind=kind, category=category, entity_type=entity_type.upper() if entity_type else None,
                                sensitive=sensitive, status=status, search=search)


Kind = Annotated[Optional[str], typer.Option("--kind", help="csv, xlsx, json, sql, text …")]
CategoryOpt = Annotated[Optional[str], typer.Option("--category", help="identifying or personal_data.")]
TypeOpt = Annotated[Optional[str], typer.Option("--type", help="An entity type (KZ_IIN, PHONE_NUMBER …).")]
Sensitive = Annotated[Optional[bool], typer.Option("--sensitive/--not-sensitive", help="Special categories.")]
StatusOpt = Annotated[Optional[str], typer.Option("--status", help="ok, partial, failed or skipped.")]
SearchOpt = Annotated[Optional[str], typer.Option("--search", help="Part of the locator.")]


@datamap_app.command("list")
@_friendly
def datamap_list(org: Org = None, kind: Kind = None, category: CategoryOpt = None, entity_type: TypeOpt = None,
                 sensitive: Sensitive = None, status: StatusOpt = None, search: SearchOpt = None,
                 limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
                 offset: Annotated[int, typer.Option(min=0)] = 0) -> None:
    """List the sources of the data map with their fields and findings per category."""
    platform = _platform()
    table = Table("id", "org", "locator", "kind", "status", "identifying", "sensitive", "fields",
                  "findings by type", "last scan (UTC)")
    with _read(platform, org) as session:
        page = datamap.list_sources(session, _filters(kind, category, entity_type, sensitive, status, search),
                                    limit=limit, offset=offset)
        for s in page.items:
            src = s.source
            by_type = ", ".join(f"{t} {n}" for t, n in s.findings_by_type.items())
            table.add_row(str(src.id), str(src.organization_id), escape(src.locator), src.kind, src.status,
                          "yes" if src.identifying else "", ", ".join(s.special) if src.sensitive else "",
                          str(s.fields), by_type, src.last_scanned_at.strftime("%Y-%m-%d %H:%M:%S"))
    out.print(table)
    out.print(f"{len(page.items)} of {page.total} source(s)")


@datamap_app.command("show")
@_friendly
def datamap_show(source_id: int, org: Org = None,
                 as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Show one source: its fields, categories, types, counts and the rule that decided."""
    platform = _platform()
    with _read(platform, org) as session:
        source = datamap.get_source(session, source_id)
        doc = {**datamap.source_dict(source), "organization_id": source.organization_id}
    if as_json:
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    out.print(f"[bold]{escape(doc['locator'])}[/bold]  {doc['kind']}, {doc['status']}, "
              f"{doc['findings']} finding(s), last scan {doc['last_scanned_at']}", highlight=False)
    if doc["last_error"]:
        out.print(f"[red]error[/red]: {escape(doc['last_error'])}", highlight=False)
    table = Table("field", "category", "special", "type", "findings", "counts", "rule", "confidence")
    for f in doc["fields"]:
        counts = ", ".join(f"{c['entity_type']} {c['count']}" for c in f["counts"])
        table.add_row(escape(f["field"]), f["category"], f["special"] or "", f["entity_type"] or "",
                      str(f["findings"]), counts, escape(f["rule"]), f"{f['confidence']:.2f}")
    out.print(table)


@datamap_app.command("export")
@_friendly
def datamap_export(
    org: RequiredOrg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", dir_okay=False, help="File (default stdout).")]
    = None,
    kind: Kind = None, category: CategoryOpt = None, entity_type: TypeOpt = None, sensitive: Sensitive = None,
    status: StatusOpt = None, search: SearchOpt = None,
) -> None:
    """Export the organization's data map (CSV: one row per source × field × type; JSON: nested). Counts and
    places only: the map holds no values."""
    if fmt not in ("csv", "json"):
        from ..core.errors import InvalidInput

        raise InvalidInput("format must be csv or json", field="--format")
    platform = _platform()
    filters = _filters(kind, category, entity_type, sensitive, status, search)
    with _read(platform, org) as session, _sink(output) as sink:
        chunks = datamap.export_csv(session, filters) if fmt == "csv" else datamap.export_json(session, filters)
        for chunk in chunks:
            sink.write(chunk)


@contextlib.contextmanager
def _sink(output: Path | None) -> Iterator[Any]:
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with output.open("w", encoding="utf-8", newline="") as fh:
        yield fh


@datamap_app.command("forget")
@_friendly
def datamap_forget(source_id: int, org: RequiredOrg) -> None:
    """Remove a source from the data map (it was deleted, or scanned by mistake); audited."""
    platform = _platform()
    with platform.db.transaction(_org(platform, org)) as session:
        datamap.forget_source(session, source_id, actor=_actor())
    out.print(f"source {source_id} removed from the data map")
