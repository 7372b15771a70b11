"""``qorgau leaks upload / confirm / discard / uploads / purge-expired / bulk-ingest`` — two-phase ingest of leak
files on the server (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER).

``upload`` parses the file and prints the review — counts per kind, masked samples, rejected lines by number
and reason, never a value — then either confirms (``--yes``) or prints the command that does. The raw file is
read, never copied; the normalized identifiers wait in the spool until confirm, discard or expiry.
``INCIDENT_REF`` is an incident's reference (``KZ-LEAK-2026-000042``) or id; ``--org BIN`` checks that the
incident is that organization's (the CLI runs with the server's database, like every ``qorgau`` command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .consent import _actor, _friendly, _json, _org, _platform, out
from .leaks import leaks_app

FORMATS = ("csv", "jsonl", "xlsx", "text")


def _incident(platform: Any, ref: str, org_bin: Optional[str]) -> tuple[int, int]:
    """(organization id, incident id) of an incident reference or id."""
    from sqlalchemy import select

    from ..core.errors import NotFound
    from ..leaks.models import LeakIncident

    org = _org(platform, org_bin) if org_bin else None
    ref = ref.strip()
    with platform.db.reader(org) as s:
        query = select(LeakIncident.organization_id, LeakIncident.id)
        query = query.where(LeakIncident.id == int(ref)) if ref.isdigit() else query.where(LeakIncident.reference == ref)
        row = s.execute(query).first()
    if row is None:
        raise NotFound(f"incident {ref} not found", field="incident")
    return int(row[0]), int(row[1])


def _upload_org(platform: Any, public_id: str, org_bin: Optional[str]) -> int:
    from sqlalchemy import select

    from ..core.errors import NotFound
    from ..leaks.models import LeakUpload

    org = _org(platform, org_bin) if org_bin else None
    with platform.db.reader(org) as s:
        found = s.scalar(select(LeakUpload.organization_id).where(LeakUpload.public_id == public_id.strip()))
    if found is None:
        raise NotFound(f"upload {public_id} not found", field="upload")
    return int(found)


def _print_review(view: Any) -> None:
    out.print(f"upload [bold]{view.public_id}[/bold] — {escape(view.filename)} ({view.format}, "
              f"{view.size_bytes:,} bytes, {view.lines:,} lines) — status [bold]{view.status}[/bold]")
    table = Table("kind", "distinct identifiers", "samples (masked)")
    for kind in ("iin", "phone", "email"):
        table.add_row(kind, f"{view.counts.get(kind, 0):,}", escape(", ".join(view.samples.get(kind, []))))
    out.print(table)
    if view.rejected_total:
        out.print(f"[yellow]{view.rejected_total:,} rejected[/yellow] (first {len(view.rejected)} shown by line):")
        for r in view.rejected[:50]:
            where = f"line {r['line']}" + (f", sheet {r['sheet']}" if "sheet" in r else "") + (
                f", column {r['column']}" if "column" in r else "")
            out.print(f"  {where}: {r['reason']}")
        if len(view.rejected) > 50:
            out.print(f"  … {len(view.rejected) - 50} more (use --json for all kept lines)")
    if view.status == "parsed":
        out.print(f"expires {view.expires_at:%Y-%m-%d %H:%M} UTC")
    elif view.status == "confirmed":
        out.print(f"committed {view.tokens_committed:,} tokens as segment {view.segment_name}")


@leaks_app.command("upload")
@_friendly
def upload(
    incident: Annotated[str, typer.Argument(help="The incident's reference (KZ-LEAK-…) or id.")],
    file: Annotated[Path, typer.Argument(help="The leak file: CSV, JSONL, XLSX or a text dump.", exists=True,
                                         dir_okay=False, readable=True)],
    format: Annotated[Optional[str], typer.Option("--format", help="csv, jsonl, xlsx or text (default: sniffed).")] = None,
    column: Annotated[Optional[list[str]], typer.Option(
        "--column", help="COLUMN=KIND, e.g. 'ИИН=iin' or '3=phone' (1-based); repeatable.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm right after the review.")] = False,
    org: Annotated[Optional[str], typer.Option("--org", help="The incident's organization (BIN), checked.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Parse a leak file and show what would be committed (masked); --yes commits it."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from ..core.errors import InvalidInput
    from ..leaks.ingest import ingest_for

    if format is not None and format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}", field="format")
    hints: dict[str, str] = {}
    for item in column or []:
        name, sep, kind = item.rpartition("=")
        if not sep or not name:
            raise InvalidInput("--column takes COLUMN=KIND", field="column")
        hints[name] = kind
    platform = _platform()
    org_id, incident_id = _incident(platform, incident, org)
    service = ingest_for(platform)
    size = file.stat().st_size
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  transient=True, disable=size < (8 << 20) or as_json) as bar:
        task = bar.add_task("parsing", total=size)
        view = service.upload(org_id, incident_id, file, file.name, format=format, actor=_actor(),
                              column_hints=hints or None, progress=lambda n: bar.advance(task, n))
    if yes:
        view = service.confirm(org_id, view.public_id, actor=_actor())
    if as_json:
        _json(view.to_dict())
        return
    _print_review(view)
    if not yes:
        out.print(f"confirm with: [bold]qorgau leaks confirm {view.public_id}[/bold]  "
                  f"(or discard: qorgau leaks discard {view.public_id})")


@leaks_app.command("confirm")
@_friendly
def confirm(upload_id: Annotated[str, typer.Argument(help="The upload's id (lu-…).")],
            org: Annotated[Optional[str], typer.Option("--org", help="The upload's organization (BIN), checked.")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False) -> None:
    """Commit a parsed upload's identifiers to the register as one segment (idempotent)."""
    from ..leaks.ingest import ingest_for

    platform = _platform()
    view = ingest_for(platform).confirm(_upload_org(platform, upload_id, org), upload_id.strip(), actor=_actor())
    _json(view.to_dict()) if as_json else _print_review(view)


@leaks_app.command("discard")
@_friendly
def discard(upload_id: Annotated[str, typer.Argument(help="The upload's id (lu-…).")],
            org: Annotated[Optional[str], typer.Option("--org", help="The upload's organization (BIN), checked.")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False) -> None:
    """Discard an unconfirmed upload; its spooled identifiers are deleted."""
    from ..leaks.ingest import ingest_for

    platform = _platform()
    view = ingest_for(platform).discard(_upload_org(platform, upload_id, org), upload_id.strip(), _actor())
    _json(view.to_dict()) if as_json else _print_review(view)


@leaks_app.command("uploads")
@_friendly
def uploads(incident: Annotated[str, typer.Argument(help="The incident's reference (KZ-LEAK-…) or id.")],
            org: Annotated[Optional[str], typer.Option("--org", help="The incident's organization (BIN), checked.")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False) -> None:
    """List an incident's uploads, newest first."""
    from ..leaks.ingest import ingest_for

    platform = _platform()
    org_id, incident_id = _incident(platform, incident, org)
    views = ingest_for(platform).list(org_id, incident_id)
    if as_json:
        _json([v.to_dict() for v in views])
        return
    table = Table("upload", "file", "status", "iin", "phone", "email", "rejected", "created", "tokens")
    for v in views:
        table.add_row(v.public_id, escape(v.filename), v.status, *(f"{v.counts.get(k, 0):,}" for k in
                                                                   ("iin", "phone", "email")),
                      f"{v.rejected_total:,}", f"{v.created_at:%Y-%m-%d %H:%M}", f"{v.tokens_committed:,}")
    out.print(table)


@leaks_app.command("purge-expired")
@_friendly
def purge_expired() -> None:
    """Expire unconfirmed uploads past their time (spools deleted) and finish interrupted confirms."""
    from ..leaks.ingest import ingest_for

    service = ingest_for(_platform())
    finished = service.reconcile()
    purged = service.purge_expired()
    out.print(f"{purged} upload(s) expired, {finished} interrupted confirm(s) finished")


@leaks_app.command("bulk-ingest")
@_friendly
def bulk_ingest(
    incident: Annotated[str, typer.Argument(help="The incident's reference (KZ-LEAK-…) or id.")],
    files: Annotated[list[Path], typer.Argument(help="CSV or text files (read by Spark).", exists=True,
                                                dir_okay=False, readable=True)],
    partitions: Annotated[int, typer.Option("--partitions", min=1, max=4096, help="Token-range partitions.")] = 8,
    master: Annotated[str, typer.Option("--master", help="Spark master (default: local[*]).")] = "local[*]",
    org: Annotated[Optional[str], typer.Option("--org", help="The incident's organization (BIN), checked.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Bulk ingest with Spark (a backfill): extract, tokenize and stage on executors, publish at once."""
    from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

    from ..leaks.spark_ingest import bulk_ingest as run

    platform = _platform()
    org_id, incident_id = _incident(platform, incident, org)
    with Progress(SpinnerColumn(), "[progress.description]{task.description}", TimeElapsedColumn(),
                  transient=True, disable=as_json) as bar:
        bar.add_task(f"Spark bulk ingest of {len(files)} file(s)", total=None)
        view = run(platform, incident_id, [str(f) for f in files], partitions=partitions, actor=_actor(),
                   organization_id=org_id, master=master)
    _json(view.to_dict()) if as_json else _print_review(view)
