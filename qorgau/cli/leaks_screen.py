"""``qorgau leaks screen FILE`` — screen your customers against the leak register, blinded (issue 8).

Runs on the operator's side: identifiers are normalized, blinded and turned into index tokens here
(:mod:`qorgau.client.leaks`); the register sees only blinded elements and tokens. The report lists input
line numbers and incident references — not the identifiers, unless ``--include-values``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .consent import _friendly, err, out
from .leaks import leaks_app


def _api_key(api_key_file: Optional[Path]) -> str:
    from ..core.errors import InvalidInput

    if api_key_file is not None:
        try:
            key = api_key_file.read_text(encoding="utf-8").strip()
        except OSError:
            raise InvalidInput("the API key file cannot be read", field="api-key-file") from None
    else:
        key = os.environ.get("QORGAU_API_KEY", "").strip()
    if not key:
        raise InvalidInput("give --api-key-file or set QORGAU_API_KEY", field="api-key-file")
    return key


@leaks_app.command("screen")
@_friendly
def screen(
    file: Annotated[Path, typer.Argument(help="Identifiers: a text file (one a line) or a CSV file (--column).",
                                         exists=True, dir_okay=False, readable=True)],
    url: Annotated[str, typer.Option("--url", help="The register's base URL, e.g. https://qorgau.gov.kz.")],
    kind: Annotated[str, typer.Option("--kind", help="iin, phone, email or auto (per value).")] = "auto",
    column: Annotated[Optional[str], typer.Option("--column", help="The CSV column holding the identifiers.")] = None,
    api_key_file: Annotated[Optional[Path], typer.Option(
        "--api-key-file", help="A file holding the API key (default: the QORGAU_API_KEY variable).")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the report as CSV to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    include_values: Annotated[bool, typer.Option(
        "--include-values", help="Put the (normalized) identifiers in the report. Off by default.")] = False,
    public_key: Annotated[Optional[str], typer.Option(
        "--public-key", help="Pin the register's public key (base64); refuse any other.")] = None,
) -> None:
    """Screen identifiers against the leak register without revealing them (blinded VOPRF, proof verified)."""
    import base64
    import binascii

    from ..client.leaks import KIND_CHOICES, ScreeningClient, read_identifiers
    from ..core.errors import InvalidInput

    if kind not in KIND_CHOICES:
        raise InvalidInput(f"kind must be one of {', '.join(KIND_CHOICES)}", field="kind")
    pinned = None
    if public_key is not None:
        try:
            pinned = base64.b64decode(public_key, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("the public key is not base64", field="public-key") from None
    items = list(read_identifiers(file, column=column))
    with ScreeningClient(url, _api_key(api_key_file), public_key=pinned) as client:
        with Progress(TextColumn("screening"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("screen", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = client.screen(items, kind, progress)
    if out_file is not None:
        out_file.write_text(report.to_csv(include_values=include_values), encoding="utf-8")
    if as_json:
        out.print_json(json.dumps(report.to_json(include_values=include_values), ensure_ascii=False))
        return
    s = report.summary()
    if out_file is None:
        sys.stdout.write(report.to_csv(include_values=include_values))
    err.print(f"{s['lines']} lines: {s['found']} found in a leak, {s['not_found']} not found, {s['invalid']} invalid "
              f"({s['evaluated']} distinct identifiers evaluated blinded)")
