"""``qorgau redact``: write a copy of a file with its personal data redacted, in the file's own format.

A thin adapter over :mod:`qorgau.discovery.redact_files` (formats) and :mod:`qorgau.discovery.redact`
(operators). Registered by ``qorgau/cli/main.py`` as ``app.command("redact")(redact_command)``. ``hash``
and ``encrypt`` need the platform (an initialized data dir) and ``--org BIN``: the organization's data
keys are used, and the run leaves an audit entry (operator and counts, never values or file names).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from ..core.errors import QorgauError
from ..discovery.redact import OPERATORS, Redactor, check_operator
from ..discovery.redact_files import (
    BINARY_KINDS,
    COLUMN_KINDS,
    FileRedactionReport,
    ResidualPersonalData,
    UnreadableFile,
    atomic_output,
    default_output,
    file_kind,
    redact_file,
    redact_stream,
    redact_to_sink,
)
from ..discovery.types import EntityType

EXIT_OK = 0
EXIT_SETUP = 1
EXIT_USAGE = 2
EXIT_FAILED = 4

HELP = """Redact personal data: write a copy of INPUT, in its own format, with every finding masked,
replaced, hashed, encrypted or dropped. The input is never changed; the output is written to a temporary
file and renamed into place when complete.

INPUT is a text file (.txt, .log, …), [bold].csv[/bold]/[bold].tsv[/bold], [bold].jsonl[/bold], a
[bold].json[/bold] document, an [bold].xlsx[/bold] workbook, a [bold].docx[/bold] document, a
[bold].parquet[/bold] file, a [bold].pdf[/bold] with --to-text, or [bold]-[/bold] for text on stdin. Text
encodings are detected (UTF-8/16, cp1251, KZ-1048); text output is UTF-8. Text kinds go to stdout without
--output; XLSX, DOCX, Parquet and PDF text go to --output or INPUT.redacted.EXT beside the input.

Operators: [bold]mask[/bold] (keep the shape: 79******2728), [bold]replace[/bold] ([KZ_IIN_1], stable
within the file), [bold]hash[/bold] (KZ_IIN:hmac:…, keyed with the organization's key), [bold]encrypt[/bold]
(ENC[…], AES-GCM with the organization's key), [bold]drop[/bold]. hash and encrypt need --org BIN.

--columns NAME=OP redacts whole values: CSV/TSV/XLSX columns by header (XLSX: row 1 of each sheet),
Parquet columns, JSON Lines fields, JSON keys at any depth. Everything else is scanned as free text.
XLSX: formulas are kept, a string literal holding personal data is redacted inside the formula, and
a formula holding it elsewhere becomes its redacted text; comments, headers/footers, sheet titles and
document properties are redacted. DOCX: paragraphs, tables, headers/footers, footnotes, comments,
tracked changes, authors and properties; a value split across runs keeps the first run's formatting.
XLSX and DOCX outputs are verified (every XML part re-scanned); if anything remains, nothing is written.
PDF: not redacted in place (a box over text leaves the text in the file); --to-text writes the extracted
text of every page, redacted, with page markers.

The report (stderr; --report json for a JSON object) gives counts per type, operator and place, never
values. JSON Lines: a line that is not a JSON object is left out and reported.

Exit code: 0 done, 1 setup problem (no data dir), 2 bad usage (unknown option or column, PDF without
--to-text), 4 the input could not be read, verification found personal data left (nothing written),
records were left out, or values could not be redacted in place (Parquet integer columns: see the report).
"""


class _Failed(Exception):
    """A usage or setup problem, printed as one red line; the message names the option, never a value."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def redact_command(
    input: Annotated[str, typer.Argument(metavar="INPUT", show_default=False,
                                         help="A .txt/.csv/.tsv/.jsonl/.json/.xlsx/.docx/.parquet/.pdf file, or '-'.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", dir_okay=False,
                      help="Write the redacted copy here (default: stdout for text kinds, else INPUT.redacted.EXT).")]
    = None,
    operator: Annotated[str, typer.Option("--operator", help=f"One of: {', '.join(OPERATORS)}.")] = "mask",
    type_operator: Annotated[Optional[list[str]], typer.Option("--type-operator",
                             help="TYPE=OP for one entity type, e.g. KZ_IIN=hash (repeatable).")] = None,
    columns: Annotated[Optional[list[str]], typer.Option("--columns",
                       help="COLUMN=OP: a whole-value operator for a column, field or key (repeatable).")] = None,
    text_field: Annotated[Optional[str], typer.Option("--text-field",
                          help="JSON Lines: redact only this field (plus --columns fields).")] = None,
    to_text: Annotated[bool, typer.Option("--to-text",
                       help="PDF: write the extracted text, redacted, page by page (.txt).")] = False,
    identifiers_only: Annotated[bool, typer.Option("--identifiers-only",
                                help="Structured identifiers only (no names, addresses, birth dates): faster.")] = False,
    min_score: Annotated[float, typer.Option("--min-score", min=0.0, max=1.0,
                         help="Redact findings scored at least this.")] = 0.5,
    allow: Annotated[Optional[Path], typer.Option("--allow", exists=True, dir_okay=False,
                     help="Allow list file: values (or re:regexes) never redacted.")] = None,
    deny: Annotated[Optional[Path], typer.Option("--deny", exists=True, dir_okay=False,
                    help="Deny list file: values (or re:regexes) always redacted.")] = None,
    custom_recognizers: Annotated[Optional[Path], typer.Option("--custom-recognizers", exists=True, dir_okay=False,
                                  help="YAML file of custom recognizers (regex, validator, context).")] = None,
    report: Annotated[str, typer.Option("--report", help="text (default) or json: the report on stderr.")] = "text",
    org: Annotated[Optional[str], typer.Option("--org", help="BIN of the organization whose keys hash/encrypt use.")] = None,
) -> None:
    err = Console(stderr=True)
    try:
        code = _run(input, output, operator, type_operator or [], columns or [], text_field, to_text,
                    identifiers_only, min_score, allow, deny, custom_recognizers, report, org, err)
    except _Failed as exc:
        err.print(f"[red]error:[/red] {_escape(str(exc))}", highlight=False)
        raise typer.Exit(exc.code) from None
    except (UnreadableFile, ResidualPersonalData) as exc:
        err.print(f"[red]error:[/red] {_escape(exc.message)}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    except QorgauError as exc:
        where = f" [{exc.field}]" if exc.field else ""
        err.print(f"[red]error{_escape(where)}:[/red] {_escape(exc.message)}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(code)


redact_command.__doc__ = HELP


def _run(input: str, output: Path | None, operator: str, type_operator: list[str], columns: list[str],
         text_field: str | None, to_text: bool, identifiers_only: bool, min_score: float, allow: Path | None,
         deny: Path | None, custom: Path | None, report_format: str, org: str | None, err: Console) -> int:
    if report_format not in ("text", "json"):
        raise _Failed("--report: use text or json")
    check_operator(operator, "--operator")
    per_type = _pairs(type_operator, "--type-operator")
    known = {t.value for t in EntityType}
    for name in per_type:
        if name not in known:
            raise _Failed(f"--type-operator: unknown entity type {name!r}; known: {', '.join(sorted(known))}")
    by_column = _pairs(columns, "--columns")
    kind = "text" if input == "-" else file_kind(input)
    if by_column and kind not in COLUMN_KINDS:
        raise _Failed("--columns applies to .csv, .tsv, .jsonl, .json, .xlsx and .parquet inputs")
    if text_field is not None and kind != "jsonl":
        raise _Failed("--text-field applies to .jsonl inputs")
    if to_text and kind != "pdf":
        raise _Failed("--to-text applies to .pdf inputs")
    if input != "-" and not Path(input).is_file():
        raise _Failed(f"no such file: {input}")
    if kind == "pdf" and not to_text:
        from ..discovery.redact_files import PDF_REFUSAL

        raise _Failed(PDF_REFUSAL)
    if output is None and (kind in BINARY_KINDS or kind == "pdf"):
        output = default_output(Path(input), kind, to_text=to_text)
    used = {operator, *per_type.values(), *by_column.values()}
    needs_keys = bool(used & {"hash", "encrypt"})
    if needs_keys and not org:
        raise _Failed("--org BIN is required for the hash and encrypt operators (they use the organization's keys)")

    from ..discovery.scanning import ScannerSpec

    spec = ScannerSpec(identifiers_only=identifiers_only, min_score=min_score, allow=_str(allow), deny=_str(deny),
                       custom=_str(custom))
    try:
        # Built before anything is read: a bad list or recognizer file is a usage error.
        scanner = spec()
        verifier = dataclasses.replace(spec, identifiers_only=True)() if kind in ("xlsx", "docx") else None
    except (ValueError, OSError) as exc:
        raise _Failed(f"cannot build the scanner: {type(exc).__name__}: {exc}") from None

    with _keys(org if needs_keys else None, used) as (keys, finish):
        redactor = Redactor(operator=operator, per_type=per_type, columns=by_column, **keys)
        if input == "-":
            result = _redact_stdin(output, redactor, scanner)
        elif output is None:
            result = redact_to_sink(input, sys.stdout, redactor=redactor, scanner=scanner, kind=kind,
                                    text_field=text_field)
        else:
            result = redact_file(input, output, redactor=redactor, scanner=scanner, verifier=verifier, kind=kind,
                                 text_field=text_field, to_text=to_text)
        finish(operator, per_type, by_column, result)
    _print_report(err, result, report_format)
    return EXIT_OK if result.complete else EXIT_FAILED


def _redact_stdin(output: Path | None, redactor: Redactor, scanner: Any) -> FileRedactionReport:
    raw: Any = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else None
    if raw is None:  # a text-only stdin (some test runners): its text, as UTF-8 bytes
        import io

        raw = io.BytesIO(sys.stdin.read().encode("utf-8"))
    if output is None:
        return redact_stream(raw, sys.stdout, redactor=redactor, scanner=scanner)
    with atomic_output(output) as temporary, temporary.open("w", encoding="utf-8", newline="") as sink:
        result = redact_stream(raw, sink, redactor=redactor, scanner=scanner)
    result.output = str(output)
    return result


def _print_report(err: Console, result: FileRedactionReport, report_format: str) -> None:
    if report_format == "json":
        err.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    for problem in result.problems[:50]:
        err.print(_escape(problem), highlight=False)
    if len(result.problems) > 50:
        err.print(f"… {len(result.problems) - 50} more", highlight=False)
    summary = ", ".join(f"{t} {n}" for t, n in sorted(result.counts.items())) or "nothing found"
    operators = ", ".join(f"{op} {n}" for op, n in sorted(result.operators.items()))
    line = f"redacted: {summary}" + (f" ({operators})" if operators else "")
    if result.left_out:
        line += f"; {result.left_out} record(s) left out"
    if result.output != "stdout":
        line += f" → {result.output}"
    err.print(_escape(line), highlight=False)
    if result.places:
        err.print("where: " + ", ".join(f"{p} {n}" for p, n in sorted(result.places.items())), highlight=False)
    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {_escape(note)}", highlight=False)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            name, eq, op = item.partition("=")
            name, op = name.strip(), op.strip()
            if not eq or not name:
                raise _Failed(f"{option} takes NAME=OPERATOR, e.g. KZ_IIN=hash")
            out[name] = check_operator(op, f"{option} {name}")
    return out


@contextlib.contextmanager
def _keys(org: str | None, used: set[str]) -> Iterator[tuple[dict[str, Any], Any]]:
    """The organization's keys for hash/encrypt, and ``finish`` that writes the audit entry.

    Keys are created (first use) in a short write transaction; the redaction then runs with a read
    session (encryption only reads the wrapped key), so a long file never holds the database's write
    lock; the audit entry is written in its own transaction once the output is complete.
    """
    if org is None:
        yield {}, lambda *args: None
        return
    from ..core import audit, auth
    from ..core.keys import KeyFileError
    from ..core.platform import NotInitialized, Platform
    from ..core.settings import SettingsError, get_settings
    from ..discovery.redact import organization_encryptor, organization_hash_key

    try:
        platform = Platform.open(get_settings())
    except (NotInitialized, KeyFileError, SettingsError) as exc:
        raise _Failed(str(exc), EXIT_SETUP) from None
    try:
        with platform.db.reader() as session:
            organization = auth.find_organization_by_bin(session, org)
            if organization is None:
                raise _Failed("--org: no organization with this BIN; see `qorgau orgs list`")
            org_id = organization.id
        keys: dict[str, Any] = {}
        with platform.db.transaction(org_id) as session:
            if "hash" in used:
                keys["hash_key"] = organization_hash_key(session, platform.keyring, org_id)
            if "encrypt" in used:
                organization_encryptor(session, platform.keyring, org_id)  # created now, used below

        done: list[dict[str, Any]] = []

        def finish(operator: str, per_type: dict[str, str], columns: dict[str, str],
                   result: FileRedactionReport) -> None:
            # Column and file names may be anything a person typed: only how many, not which.
            done.append({"operator": operator, "per_type": per_type, "whole_columns": len(columns),
                         "kind": result.kind, "counts": dict(result.counts)})

        with platform.db.reader(org_id) as session:
            if "encrypt" in used:
                keys["encryptor"] = organization_encryptor(session, platform.keyring, org_id)
            yield keys, finish
        for details in done:  # the output is complete: record that the keys were used, and how
            with platform.db.transaction(org_id) as session:
                audit.record(session, actor=_actor(), action="discovery.redact", object_type="file",
                             object_id=audit.random_object_id("redaction"), organization_id=org_id, details=details)
    finally:
        platform.close()


def _actor() -> str:
    return "cli:" + (os.environ.get("USER") or "local")[:32]


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)

