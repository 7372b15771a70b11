"""``qorgau redact``: write a copy of a text, CSV/TSV or JSON Lines file with its personal data redacted.

A thin adapter over :mod:`qorgau.discovery.redact`. Registered by ``qorgau/cli/main.py`` as
``app.command("redact")(redact_command)``. ``hash`` and ``encrypt`` need the platform (an initialized data
dir) and ``--org BIN``: the organization's data keys are used, and the run leaves an audit entry.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any, Optional

import typer
from rich.console import Console

from ..core.errors import QorgauError
from ..discovery.redact import OPERATORS, Redactor, check_operator
from ..discovery.types import EntityType

EXIT_OK = 0
EXIT_SETUP = 1
EXIT_USAGE = 2
EXIT_FAILED = 4

HELP = """Redact personal data: write a copy of INPUT with every finding masked, replaced, hashed,
encrypted or dropped.

INPUT is a text file (.txt, .log, …), a [bold].csv[/bold]/[bold].tsv[/bold] table, a [bold].jsonl[/bold]
file, or [bold]-[/bold] for text on stdin. The encoding is detected (UTF-8/16, cp1251, KZ-1048); the output
is UTF-8.

Operators: [bold]mask[/bold] (keep the shape: 79******2728), [bold]replace[/bold] ([KZ_IIN_1], stable
within the file), [bold]hash[/bold] (KZ_IIN:hmac:…, keyed with the organization's key), [bold]encrypt[/bold]
(ENC[…], AES-GCM with the organization's key), [bold]drop[/bold]. hash and encrypt need --org BIN.

Tables: --columns col=op redacts whole cells of a column; every other cell is scanned as free text.
JSON Lines: with --text-field only that field (and --columns fields) are redacted, otherwise every field is
scanned. A line that is not a JSON object is left out of the output and reported (exit code 4).

Exit code: 0 done, 1 setup problem (no data dir), 2 bad usage, 4 some records could not be redacted.
"""

TABLE_EXTENSIONS = {".csv": ",", ".tsv": "\t"}
JSONL_EXTENSIONS = frozenset({".jsonl", ".ndjson"})


class _Failed(Exception):
    """A usage or setup problem, printed as one red line; the message names the option, never a value."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def redact_command(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="A .txt/.csv/.tsv/.jsonl file, or '-' for stdin.",
                                         show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", dir_okay=False,
                      help="Write the redacted copy here (default: stdout).")] = None,
    operator: Annotated[str, typer.Option("--operator", help=f"One of: {', '.join(OPERATORS)}.")] = "mask",
    type_operator: Annotated[Optional[list[str]], typer.Option("--type-operator",
                             help="TYPE=OP for one entity type, e.g. KZ_IIN=hash (repeatable).")] = None,
    columns: Annotated[Optional[list[str]], typer.Option("--columns",
                       help="COLUMN=OP: a whole-column operator for tables and JSON Lines (repeatable).")] = None,
    text_field: Annotated[Optional[str], typer.Option("--text-field",
                          help="JSON Lines: redact only this field (plus --columns fields).")] = None,
    identifiers_only: Annotated[bool, typer.Option("--identifiers-only",
                                help="Structured identifiers only (no names, addresses, birth dates): faster.")] = False,
    min_score: Annotated[float, typer.Option("--min-score", min=0.0, max=1.0,
                         help="Redact findings scored at least this.")] = 0.5,
    org: Annotated[Optional[str], typer.Option("--org", help="BIN of the organization whose keys hash/encrypt use.")] = None,
) -> None:
    err = Console(stderr=True)
    try:
        code = _run(input, output, operator, type_operator or [], columns or [], text_field, identifiers_only,
                    min_score, org, err)
    except _Failed as exc:
        err.print(f"[red]error:[/red] {_escape(str(exc))}")
        raise typer.Exit(exc.code) from None
    except UnicodeDecodeError as exc:
        err.print(f"[red]error:[/red] {_escape(_name(input))}: not valid {exc.encoding} text after the first bytes")
        raise typer.Exit(EXIT_FAILED) from None
    except QorgauError as exc:
        where = f" [{exc.field}]" if exc.field else ""
        err.print(f"[red]error{_escape(where)}:[/red] {_escape(exc.message)}")
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(code)


redact_command.__doc__ = HELP


def _run(input: str, output: Path | None, operator: str, type_operator: list[str], columns: list[str],
         text_field: str | None, identifiers_only: bool, min_score: float, org: str | None, err: Console) -> int:
    check_operator(operator, "--operator")
    per_type = _pairs(type_operator, "--type-operator")
    known = {t.value for t in EntityType}
    for name in per_type:
        if name not in known:
            raise _Failed(f"--type-operator: unknown entity type {name!r}; known: {', '.join(sorted(known))}")
    by_column = _pairs(columns, "--columns")
    kind = _kind(input)
    if kind == "text" and by_column:
        raise _Failed("--columns applies to .csv, .tsv and .jsonl inputs")
    if text_field is not None and kind != "jsonl":
        raise _Failed("--text-field applies to .jsonl inputs")
    if input != "-" and not Path(input).is_file():
        raise _Failed(f"no such file: {input}")
    used = {operator, *per_type.values(), *by_column.values()}
    needs_keys = bool(used & {"hash", "encrypt"})
    if needs_keys and not org:
        raise _Failed("--org BIN is required for the hash and encrypt operators (they use the organization's keys)")

    from ..discovery.engine import Scanner

    base = Scanner.identifiers_only() if identifiers_only else Scanner.default()
    scanner = Scanner(base.recognizers, min_score=min_score)
    with _keys(org if needs_keys else None, used) as (keys, finish):
        redactor = Redactor(operator=operator, per_type=per_type, columns=by_column, **keys)
        with _opened(output) as sink:
            if kind == "text":
                failures = _redact_text(input, sink, redactor, scanner)
            elif kind == "jsonl":
                failures = _redact_jsonl(input, sink, redactor, scanner, text_field, err)
            else:
                failures = _redact_table(input, sink, redactor, scanner, TABLE_EXTENSIONS[Path(input).suffix.lower()])
        counts = dict(redactor.counts)
        finish(operator, per_type, by_column, counts)
    summary = ", ".join(f"{t} {n}" for t, n in sorted(counts.items())) or "nothing found"
    err.print(f"redacted: {summary}" + (f"; {failures} record(s) left out" if failures else ""))
    return EXIT_FAILED if failures else EXIT_OK


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


def _kind(input: str) -> str:
    if input == "-":
        return "text"
    suffix = Path(input).suffix.lower()
    if suffix in TABLE_EXTENSIONS:
        return "table"
    if suffix in JSONL_EXTENSIONS:
        return "jsonl"
    return "text"


@contextlib.contextmanager
def _keys(org: str | None, used: set[str]) -> Iterator[tuple[dict[str, Any], Any]]:
    """The organization's keys for hash/encrypt, inside one transaction that also writes the audit entry."""
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
        with platform.db.transaction(org_id) as session:
            keys: dict[str, Any] = {}
            if "hash" in used:
                keys["hash_key"] = organization_hash_key(session, platform.keyring, org_id)
            if "encrypt" in used:
                keys["encryptor"] = organization_encryptor(session, platform.keyring, org_id)

            def finish(operator: str, per_type: dict[str, str], columns: dict[str, str],
                       counts: dict[str, int]) -> None:
                # Column names may be anything a spreadsheet author typed: only how many, not which.
                audit.record(session, actor=_actor(), action="discovery.redact", object_type="file",
                             object_id=uuid.uuid4().hex, organization_id=org_id,
                             details={"operator": operator, "per_type": per_type,
                                      "whole_columns": len(columns), "counts": counts})

            yield keys, finish
    finally:
        platform.close()


def _actor() -> str:
    return "cli:" + (os.environ.get("USER") or "local")[:32]


@contextlib.contextmanager
def _opened(output: Path | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        return
    with open(output, "w", encoding="utf-8", newline="") as fh:
        yield fh


def _read_text(input: str) -> IO[str]:
    """The input as text lines with their own line endings, its encoding detected from the first bytes."""
    from ..discovery.sources import SNIFF_BYTES, detect_encoding

    if input == "-":
        raw: Any = io.BytesIO(sys.stdin.buffer.read()) if hasattr(sys.stdin, "buffer") else \
            io.BytesIO(sys.stdin.read().encode("utf-8"))
    else:
        raw = open(input, "rb")  # noqa: SIM115 - closed with the wrapper
    encoding = detect_encoding(raw.read(SNIFF_BYTES))
    if encoding is None:
        raw.close()
        raise _Failed(f"{_name(input)}: binary content (no text encoding detected)")
    raw.seek(0)
    # newline="": lines keep their own endings (\r\n stays \r\n), as the csv module also requires.
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def _name(input: str) -> str:
    return "stdin" if input == "-" else input


def _redact_text(input: str, sink: IO[str], redactor: Redactor, scanner: Any) -> int:
    # Line by line: memory stays flat, and one line is one document piece for the scanner's context.
    with _read_text(input) as lines:
        for line in lines:
            sink.write(redactor.redact_text(line, scanner.scan(line)).text)
    return 0


def _redact_jsonl(input: str, sink: IO[str], redactor: Redactor, scanner: Any, text_field: str | None,
                  err: Console) -> int:
    failures = 0
    only = None if text_field is None else [text_field]
    with _read_text(input) as lines:
        for number, line in enumerate(lines, start=1):
            failures += _redact_record(number, line, sink, redactor, scanner, text_field, only, err)
    return failures


def _redact_record(number: int, line: str, sink: IO[str], redactor: Redactor, scanner: Any,
                   text_field: str | None, only: list[str] | None, err: Console) -> int:
    """One JSON Lines record; 1 when it had to be left out (never written unredacted), else 0."""
    if not line.strip():
        return 0
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        err.print(f"line {number}: not a JSON object; left out")
        return 1
    if text_field is not None and not isinstance(record.get(text_field), str):
        err.print(f"line {number}: field {_escape(repr(text_field))} is missing or not a string; left out")
        return 1
    sink.write(json.dumps(redactor.redact_row(record, scanner, only=only), ensure_ascii=False) + "\n")
    return 0


def _redact_table(input: str, sink: IO[str], redactor: Redactor, scanner: Any, delimiter: str) -> int:
    with _read_text(input) as lines:
        reader = csv.DictReader(lines, delimiter=delimiter)
        try:
            header = reader.fieldnames or []
            missing = [c for c in redactor.columns if c not in header]
            if missing:
                raise _Failed(f"--columns: no column named {', '.join(repr(c) for c in missing)} in the header")
            writer = csv.writer(sink, delimiter=delimiter, lineterminator="\n")
            writer.writerow(header)
            for row in reader:
                extra = row.pop(None, None)  # cells beyond the header: scanned too, never copied unread
                redacted = redactor.redact_row(row, scanner)
                cells = [redacted.get(name, "") for name in header]
                cells.extend(redactor.scan_value(cell, scanner) for cell in extra or ())
                writer.writerow(cells)
        except csv.Error:
            raise _Failed(f"{input}: line {reader.line_num}: malformed CSV", EXIT_FAILED) from None
    return 0


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
