"""``qorgau split``, ``qorgau join-back`` and ``qorgau depersonalize``: the identity vault's dataset commands.

Thin adapters over :mod:`qorgau.vault.split` and :mod:`qorgau.vault.depersonalize`. Registered by
``qorgau/cli/main.py`` as ``app.command("split")(split_command)`` and so on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..core.errors import QorgauError

EXIT_OK = 0
EXIT_SETUP = 1
EXIT_USAGE = 2
EXIT_ROWS = 4
EXIT_NOT_ANONYMOUS = 1

SPLIT_HELP = """Split a dataset: identifying columns go into the identity vault, the data itself stays.

INPUT is a [bold].csv[/bold]/[bold].tsv[/bold], [bold].jsonl[/bold] or [bold].parquet[/bold] file, or a
database URL ([bold]sqlite:///x.db[/bold], [bold]postgresql://…[/bold]) with --table (and optionally --where).
OUT gets the same format (a database table → .parquet or .csv): a pseudonym column (ps_ + 26 letters, stable
per person, organization and --domain) plus the data-itself columns. A manifest (OUT.manifest.json) says which
columns moved, as which identifier type, by which rule, and lists rows with problems by number and reason —
never a value.

Columns are classified by name and sampled values; --columns decides some or all of them explicitly:
[bold]iin=KZ_IIN,fio=PERSON,phone=PHONE_NUMBER,diagnosis=keep,notes=drop[/bold].

Rows with an invalid identifier (bad IIN checksum …) are kept out of the vault and written with an empty
pseudonym (--keep-invalid stores them marked invalid instead); malformed rows are left out. Interrupted
(crash, kill, Ctrl-C)? Run the same command with --resume: nothing is lost or duplicated.

Exit code: 0 done, 1 setup problem (no data dir), 2 bad usage, 4 done but some rows had problems
(see the manifest).
"""

JOIN_HELP = """Re-identify a split dataset for a stated purpose: the identifying columns come back.

INPUT is a dataset written by [bold]qorgau split[/bold] (rows may have been filtered or columns added since),
--manifest its manifest. --purpose is a purpose code (e.g. [bold]customer-request[/bold]); every batch of
re-identifications is audited with it. Subjects erased since (crypto-shredded) come back as empty cells and
are counted by erasure date; the command still succeeds for everyone else.

Exit code: 0 done, 1 setup problem, 2 bad usage or not allowed, 4 done but some rows could not be
re-identified (erased, unknown or refused).
"""

DEPERS_HELP = """Depersonalize a dataset for research or statistics (PD law Art.1(7), Art.17).

Pseudonyms become unlinkable random ids (a fresh random map per export, never stored); quasi-identifiers
are generalized: --quasi [bold]birth_date=birth_date,address=address,age=age,zip=postal_code,iin=iin[/bold]
(kinds: birth_date → year, age → 5-year band, address → region, postal_code → first 3 characters,
iin → sex and birth year, iin_sex, iin_birth_year, category = kept as is; keep/drop for other columns).
Columns that still identify people and are not declared stop the export.

The k-anonymity report gives, per set of quasi-identifiers, the smallest group (distinct subjects when
there is a pseudonym column) and the rows in groups smaller than --k; --suppress leaves those rows out.

Exit code: 0 k-anonymous, 1 written but some groups are smaller than k, 2 bad usage,
4 malformed rows were left out.
"""


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{int(task.completed):,} rows  {rate:,.0f} rows/s")


@contextlib.contextmanager
def _progress(err: Console, enabled: bool | None, label: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A Rich progress display on stderr; yields ``update(rows, total)`` (None when disabled)."""
    if enabled is None:
        enabled = err.is_terminal
    if not enabled:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn(f"[bold]{label}"), BarColumn(bar_width=None), _RateColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False, refresh_per_second=4) as bar:
        task = bar.add_task(label, total=None)

        def update(rows: int, total: int | None) -> None:
            bar.update(task, completed=rows, total=total)

        yield update


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _actor() -> str:
    return "cli:" + (os.environ.get("USER") or "local")[:32]


def _fail(err: Console, message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[red]error:[/red] {_escape(message)}")
    return typer.Exit(code)


@contextlib.contextmanager
def _platform(err: Console) -> Iterator[Any]:
    from ..core.keys import KeyFileError
    from ..core.platform import NotInitialized, Platform
    from ..core.settings import SettingsError, get_settings

    try:
        platform = Platform.open(get_settings())
    except (NotInitialized, KeyFileError, SettingsError) as exc:
        raise _fail(err, str(exc), EXIT_SETUP) from None
    try:
        yield platform
    finally:
        platform.close()


def _organization(platform: Any, bin: str | None, err: Console) -> int:
    """The organization by BIN; without --org, the only operator there is (the authorized body holds no datasets)."""
    from ..core import auth

    with platform.db.reader() as session:
        if bin:
            org = auth.find_organization_by_bin(session, bin)
            if org is None:
                raise _fail(err, "--org: no organization with this BIN; see `qorgau orgs list`")
            return org.id
        orgs = [o for o in auth.list_organizations(session) if not o.is_authority]
    if len(orgs) == 1:
        return orgs[0].id
    raise _fail(err, f"--org BIN is required: {len(orgs)} operators share this platform"
                if orgs else "no organization exists yet; create one with `qorgau orgs create`")


@contextlib.contextmanager
def _domain_errors(err: Console) -> Iterator[None]:
    try:
        yield
    except QorgauError as exc:
        where = f" [{exc.field}]" if exc.field else ""
        err.print(f"[red]error{_escape(where)}:[/red] {_escape(exc.message)}")
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as exc:  # disk full, permission denied: the file and the reason (never its content)
        err.print(f"[red]error:[/red] {_escape(str(exc.filename or ''))}: {_escape(exc.strerror or type(exc).__name__)}")
        raise typer.Exit(EXIT_ROWS) from None


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops like Ctrl-C: the current batch's transaction rolls back, --resume continues."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def split_command(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="A .csv/.tsv/.jsonl/.parquet file or a database URL.",
                                         show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", dir_okay=False, show_default=False,
                      help="The split dataset (same format; a database table → .parquet or .csv).")],
    columns: Annotated[Optional[list[str]], typer.Option("--columns",
                       help="COLUMN=TYPE|keep|drop, comma-separated or repeated; others are classified.")] = None,
    domain: Annotated[Optional[str], typer.Option("--domain", help="Pseudonym domain (a-z, 0-9, _ -; default "
                                                  "'default'): datasets of one domain share pseudonyms.")] = None,
    org: Annotated[Optional[str], typer.Option("--org", help="BIN of the organization whose vault receives the "
                                               "identities (default: the only operator).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted split of OUT.")] = False,
    keep_invalid: Annotated[Optional[bool], typer.Option("--keep-invalid/--no-keep-invalid",
                            help="Store invalid identifiers marked invalid instead of keeping them out.")] = None,
    table: Annotated[Optional[str], typer.Option("--table", help="Database input: the table to split.")] = None,
    where: Annotated[Optional[str], typer.Option("--where", help="Database input: an SQL condition on the rows.")]
    = None,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", dir_okay=False,
                        help="Write the manifest here (default: OUT.manifest.json).")] = None,
    pseudonym_column: Annotated[Optional[str], typer.Option("--pseudonym-column",
                                help="Name of the pseudonym column (default: pseudonym).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=100_000,
                          help="Rows per vault transaction (and checkpoint).")] = 2000,
    sample_rows: Annotated[int, typer.Option("--sample-rows", min=1, max=100_000,
                           help="Rows sampled to classify the columns.")] = 500,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress",
                        help="Progress bar on stderr (default: when stderr is a terminal).")] = None,
) -> None:
    from ..vault.split import SplitProgress, split

    err = Console(stderr=True)
    with _domain_errors(err), _platform(err) as platform:
        org_id = _organization(platform, org, err)
        with _progress(err, progress, "split") as update, _sigterm_as_interrupt():
            def on_progress(p: SplitProgress) -> None:
                if update is not None:
                    update(p.rows, p.total)

            try:
                report = split(input, output, platform=platform, org=org_id, actor=_actor(), columns=columns,
                               domain=domain, resume=resume, keep_invalid=keep_invalid, batch_size=batch_size,
                               sample_rows=sample_rows, table=table, where=where,
                               pseudonym_column=pseudonym_column, manifest=manifest, on_progress=on_progress)
            except KeyboardInterrupt:
                err.print("[yellow]interrupted[/yellow]: every committed batch is safe; run the same command with "
                          "--resume to continue")
                raise typer.Exit(130) from None
    m = report.manifest
    moved = [c for c in m["columns"] if c["action"] == "vault"]
    table_out = Table(title=f"split → {_escape(str(report.output))}", show_header=True)
    for col in ("column", "went to", "rule"):
        table_out.add_column(col)
    for c in m["columns"]:
        where_to = c["entity_type"] if c["action"] == "vault" else c["action"]
        table_out.add_row(_escape(c["name"]), where_to, _escape(c["rule"]))
    err.print(table_out)
    rate = m["timings"].get("rows_per_s")
    err.print(f"{report.rows:,} rows read, {report.written:,} written; {report.tokenized:,} tokenized "
              f"({report.subjects_created:,} new subjects) into {len(moved)} vault column(s); "
              f"{report.without_identifiers:,} without identifiers; {report.invalid:,} invalid (not in the vault), "
              f"{report.kept_invalid:,} stored invalid, {report.left_out:,} malformed left out"
              + (f"; {rate:,} rows/s" if rate else ""))
    err.print(f"manifest: {_escape(str(report.manifest_path))}")
    raise typer.Exit(EXIT_ROWS if report.problems else EXIT_OK)


split_command.__doc__ = SPLIT_HELP


def join_back_command(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="A dataset written by `qorgau split`.",
                                         show_default=False)],
    manifest: Annotated[Path, typer.Option("--manifest", "-m", exists=True, dir_okay=False, show_default=False,
                        help="The split's manifest.")],
    output: Annotated[Path, typer.Option("--output", "-o", dir_okay=False, show_default=False,
                      help="The re-identified dataset (same format as INPUT).")],
    purpose: Annotated[str, typer.Option("--purpose", show_default=False,
                       help="Why: a purpose code such as customer-request (audited).")],
    org: Annotated[Optional[str], typer.Option("--org", help="BIN of the organization (checked against the "
                                               "manifest).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=100_000, help="Rows per vault call.")] = 2000,
    report_path: Annotated[Optional[Path], typer.Option("--report", dir_okay=False,
                           help="Also write the counts as JSON here.")] = None,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress",
                        help="Progress bar on stderr (default: when stderr is a terminal).")] = None,
) -> None:
    from ..core.auth import Principal, Role
    from ..vault.split import SplitProgress, join_back, read_manifest

    err = Console(stderr=True)
    with _domain_errors(err), _platform(err) as platform:
        doc = read_manifest(manifest)
        org_id = int(doc["organization_id"])
        if org is not None and _organization(platform, org, err) != org_id:
            raise _fail(err, "--org: the manifest belongs to another organization")
        # Whoever runs the command can read the master key file: the CLI acts with the organization's full
        # rights (as `qorgau vault` does), and the audit log names it cli:<user>.
        principal = Principal(kind="cli", id=0, organization_id=org_id,
                              roles=frozenset({Role.ADMIN.value, Role.DPO.value}))
        with _progress(err, progress, "join-back") as update:
            def on_progress(p: SplitProgress) -> None:
                if update is not None:
                    update(p.rows, p.total)

            report = join_back(input, manifest=manifest, output=output, purpose=purpose, principal=principal,
                               platform=platform, actor=_actor(), batch_size=batch_size, on_progress=on_progress)
    if report_path is not None:
        report_path.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
    erased = ", ".join(f"{n} erased on {day}" for day, n in sorted(report.erased_on.items()))
    err.print(f"{report.rows:,} rows: {report.restored:,} re-identified, {report.without_pseudonym:,} without a "
              f"pseudonym, {report.unknown:,} unknown, {report.refused:,} refused"
              + (f"; {erased}" if erased else "")
              + (f"; {report.ambiguous_cells:,} cells where the subject has several values (the first is used)"
                 if report.ambiguous_cells else "")
              + (f"; {report.malformed:,} malformed rows left out" if report.malformed else ""))
    raise typer.Exit(EXIT_ROWS if (report.erased or report.unknown or report.refused or report.malformed) else EXIT_OK)


join_back_command.__doc__ = JOIN_HELP


def depersonalize_command(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="A .csv/.tsv/.jsonl/.parquet file or a database URL.",
                                         show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", dir_okay=False, show_default=False,
                      help="The depersonalized dataset (same format; a database table → .parquet or .csv).")],
    quasi: Annotated[list[str], typer.Option("--quasi", show_default=False,
                     help="COLUMN=KIND, comma-separated or repeated (birth_date, age, address, postal_code, iin, "
                          "iin_sex, iin_birth_year, category; keep, drop).")],
    k: Annotated[int, typer.Option("--k", min=1, help="k of k-anonymity.")] = 5,
    suppress: Annotated[bool, typer.Option("--suppress", help="Leave out rows in groups smaller than k.")] = False,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", exists=True, dir_okay=False,
                        help="The split manifest (names the pseudonym column).")] = None,
    pseudonym_column: Annotated[Optional[str], typer.Option("--pseudonym-column",
                                help="The column to replace with random ids (default: pseudonym, if present).")]
    = None,
    id_column: Annotated[str, typer.Option("--id-column", help="Name of the random id column.")] = "random_id",
    table: Annotated[Optional[str], typer.Option("--table", help="Database input: the table.")] = None,
    where: Annotated[Optional[str], typer.Option("--where", help="Database input: an SQL condition.")] = None,
    report_path: Annotated[Optional[Path], typer.Option("--report", dir_okay=False,
                           help="Write the k-anonymity report as JSON here.")] = None,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress",
                        help="Progress bar on stderr (default: when stderr is a terminal).")] = None,
) -> None:
    from ..vault.depersonalize import depersonalize

    err = Console(stderr=True)
    with _domain_errors(err), _progress(err, progress, "depersonalize") as update:
        report = depersonalize(input, output, quasi=quasi, k=k, suppress=suppress, manifest=manifest,
                               pseudonym_column=pseudonym_column, id_column=id_column, table=table, where=where,
                               on_progress=(lambda rows: update(rows, None)) if update else None)
    if report_path is not None:
        report_path.write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    table_out = Table(title=f"k-anonymity (k = {report.k}, counting {report.counted})")
    for col in ("quasi-identifiers", "groups", "smallest group", "groups < k", "rows in groups < k"):
        table_out.add_column(col)
    for stats in report.after:
        table_out.add_row(_escape(", ".join(stats.columns)), f"{stats.groups:,}", str(stats.smallest_group or "–"),
                          f"{stats.groups_below_k:,}", f"{stats.rows_in_groups_below_k:,}")
    err.print(table_out)
    err.print(f"{report.rows:,} rows, {report.rows_written:,} written"
              + (f", {report.suppressed_rows:,} suppressed" if report.suppressed_rows else "")
              + (f", {report.left_out:,} malformed left out" if report.left_out else "")
              + ("; random ids replace the pseudonyms" if report.random_ids else "")
              + "".join(f"; {n:,} {_escape(c)} not generalizable (empty)" for c, n in report.not_generalizable.items()))
    if report.left_out:
        raise typer.Exit(EXIT_ROWS)
    raise typer.Exit(EXIT_OK if report.k_anonymous else EXIT_NOT_ANONYMOUS)


depersonalize_command.__doc__ = DEPERS_HELP
