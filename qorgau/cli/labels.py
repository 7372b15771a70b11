"""``qorgau label``, ``qorgau verify`` and ``qorgau labels …`` — AI content labels from the command line (issue 9;
L-AI-LABEL, L-AI-DEF, L-FINE-AI). Thin adapters over :mod:`qorgau.provenance.service`.

``qorgau label FILE_OR_DIR… --system ID`` adds the visible warning and the signed marking to each file and
writes ``<stem>.ai<ext>`` next to it (or under ``--out DIR``, mirroring the folders it walked). A folder is a
batch: its files (``--recursive``: and its subfolders'; hidden files and earlier ``*.ai.*`` outputs are left
alone) are labeled one by one, each in its own transaction, under a progress bar. An existing output is never
overwritten without ``--force``, and the original is never touched unless ``--in-place`` says so (then it is
replaced atomically: a temporary file in the same folder, then a rename). A file qorgau can't label (an
unsupported format, a corrupt file) is reported with its field and skipped; the others are still labeled.

``qorgau verify FILE_OR_DIR…`` checks labels: trusted, untrusted, invalid (with the failing assertion) or
unlabeled, the AI system, the operator and whether the warning is still there. Folders are walked with their
subfolders. ``--report json`` and ``--report html`` (a self-contained page, :mod:`qorgau.provenance.report`)
make a folder audit; ``--trust PEM`` adds trust anchors for this run only.

Exit codes — ``label``: 0 every file labeled, 1 at least one file failed (the list names each file and field),
2 bad options. ``verify``: 0 every file is *trusted*, 1 at least one is untrusted, invalid, unlabeled or could not
be verified, 2 bad options. Setup problems (no data dir, no master key) exit 1 as in every ``qorgau`` command.

``--org BIN`` names the operator; it may be left out when the installation has one organization. The CLI acts with
that organization's admin rights (whoever runs it can read the master key) and the audit log names it ``cli:0``.
File names are printed back to whoever runs the command, never stored or audited.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .consent import _friendly, _json, _org, _platform

out = Console()
err = Console(stderr=True)
labels_app = typer.Typer(help="AI content labels: the signing certificate, labels issued, trust anchors "
                              "(L-AI-LABEL).", no_args_is_help=True)

OrgOption = Annotated[Optional[str], typer.Option(
    "--org", help="The operator's BIN (may be left out when there is one organization).")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON output.")]
REPORTS = ("text", "json", "html")
DEFAULT_HTML = "label-audit.html"


@dataclass(frozen=True)
class _Item:
    path: Path        # the file
    shown: str        # how it is named in output: relative to the folder given, or as given
    relative: Path    # its place under --out (folders mirrored)


def _organization(platform: Any, org: str | None) -> int:
    if org:
        return _org(platform, org)
    from ..core import auth
    from ..core.errors import InvalidInput

    with platform.db.reader() as s:
        orgs = auth.list_organizations(s)
    if len(orgs) != 1:
        raise InvalidInput("name the organization with --org BIN (see `qorgau orgs list`)", field="--org")
    return orgs[0].id


def _principal(org_id: int) -> Any:
    from ..core.auth import Principal

    # Whoever runs the command can read the master key file: the CLI acts with the organization's full rights,
    # as `qorgau vault` does.
    return Principal(kind="cli", id=0, organization_id=org_id, roles=frozenset({"admin", "dpo"}))


def _is_output(path: Path) -> bool:
    """``photo.ai.png``: a label this command wrote earlier."""
    return Path(path.stem).suffix == ".ai"


def _walk(paths: list[Path], *, recursive: bool, skip_outputs: bool) -> list[_Item]:
    """Files named and files in the folders named (hidden ones skipped), each once, in a stable order."""
    from ..core.errors import InvalidInput

    items: list[_Item] = []
    seen: set[Path] = set()
    for given in paths:
        if given.is_file():
            key = given.resolve()
            if key not in seen:
                seen.add(key)
                items.append(_Item(given, str(given), Path(given.name)))
            continue
        if not given.is_dir():
            raise InvalidInput(f"{given}: no such file or folder", field="FILE_OR_DIR")
        found = given.rglob("*") if recursive else given.iterdir()
        for path in sorted(found):
            relative = path.relative_to(given)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue
            if skip_outputs and _is_output(path):
                continue
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            shown = relative.as_posix() if len(paths) == 1 else (Path(given.name) / relative).as_posix()
            items.append(_Item(path, shown, relative))
    return items


def _read(path: Path, max_bytes: int) -> bytes:
    from ..core.errors import InvalidInput

    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InvalidInput(f"the file is larger than {max_bytes} bytes (labels_max_bytes)", field="file")
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read the file ({type(exc).__name__})", field="file") from None


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write_atomically(target: Path, data: bytes, *, mode: int | None = None) -> None:
    """A temporary file in the target's folder, then a rename: a reader never sees half a file. The file gets
    ``mode`` (an in-place label keeps the original's), else what the umask gives a new file — labeled content is
    meant to be published, unlike mkstemp's private 0600."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".qorgau-", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, _default_mode() if mode is None else mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def _progress(total: int, description: str, *, quiet: bool) -> Iterator[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True, disable=quiet or total < 2) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


def _style(position: str | None, lang: str | None, contrast: str | None, tile: bool) -> Any:
    from ..provenance.overlay import WarningStyle

    options: dict[str, Any] = {"tile": tile}
    if position:
        options["position"] = position
    if contrast:
        options["contrast"] = contrast
    if lang:
        options["languages"] = tuple(code.strip() for code in lang.split(",") if code.strip())
    style = WarningStyle(**options)
    style.validate()  # a bad option fails once, before any file is read
    return style


# --- qorgau label ------------------------------------------------------------------------------------------------


@_friendly
def label_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to label.", metavar="FILE_OR_DIR")],
    system: Annotated[str, typer.Option("--system", help="The AI system: its code or register number (KZ-AI-…).")],
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Write the labeled files here (folders mirrored); "
                                                           "default: next to each original.")] = None,
    org: OrgOption = None,
    position: Annotated[Optional[str], typer.Option("--position", help="Warning band: top, bottom or center.")] = None,
    lang: Annotated[Optional[str], typer.Option(
        "--lang", help="Warning languages, e.g. kk,ru,en (default all three).")] = None,
    contrast: Annotated[Optional[str], typer.Option("--contrast", help="dark, light or high.")] = None,
    no_tile: Annotated[bool, typer.Option(
        "--no-tile", help="Don't repeat the warning faintly across pictures.")] = False,
    composite: Annotated[bool, typer.Option(
        "--composite", help="An AI edit of real content (IPTC composite type).")] = False,
    in_place: Annotated[bool, typer.Option(
        "--in-place", help="Replace each original with its labeled version (atomically).")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Walk subfolders too.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")] = False,
    as_json: AsJson = False,
) -> None:
    """Label AI-generated files: a visible warning and a signed C2PA marking naming the AI system (L-AI-LABEL).

    Exit code 0 when every file was labeled, 1 when any failed (each named with its field), 2 for bad options.
    """
    from ..core.errors import InvalidInput, QorgauError
    from ..provenance.formats import sniff
    from ..provenance.service import labels_for

    if in_place and out_dir is not None:
        raise InvalidInput("--in-place and --out exclude each other", field="--in-place")
    style = _style(position, lang, contrast, not no_tile)
    items = _walk(paths, recursive=recursive, skip_outputs=True)
    if not items:
        raise InvalidInput("no files to label", field="FILE_OR_DIR")
    platform = _platform()
    org_id = _organization(platform, org)
    principal = _principal(org_id)
    service = labels_for(platform)
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with _progress(len(items), "labeling", quiet=as_json) as advance:
        for item in items:
            try:
                data = _read(item.path, service.max_bytes)
                with platform.db.transaction(org_id) as session:
                    result = service.label(session, principal, data=data, filename=item.path.name, system=system,
                                           warning=style, composite=composite)
                    if in_place:
                        target = item.path
                        if sniff(data, item.path.name).media_type != result.media_type:
                            # e.g. a MOV comes back as MP4: the original's name would lie about its format
                            raise InvalidInput(f"the labeled file is {result.media_type}, not the original's format: "
                                               "write it next to the original or with --out", field="--in-place")
                    else:
                        name = result.filename_for(item.path.name)
                        target = ((out_dir / item.relative.parent) if out_dir is not None
                                  else item.path.parent) / name
                        if target.exists() and not force:
                            # raised inside the transaction: the label record is rolled back with it
                            raise InvalidInput(f"{target} exists (--force overwrites it)", field="--force")
                    try:
                        mode = stat.S_IMODE(item.path.stat().st_mode) if in_place else None
                        _write_atomically(target, result.data, mode=mode)
                    except OSError as exc:
                        raise InvalidInput(f"cannot write {target} ({type(exc).__name__})", field="--out") from None
                done.append({"file": item.shown, "output": str(target), "record_id": result.record_id,
                             "media_type": result.media_type, "warning": result.warning.get("kind"),
                             "register_id": result.register_id, "local_test_ca": result.signer_local_test_ca})
            except QorgauError as exc:
                failed.append({"file": item.shown, "field": exc.field, "error": exc.message})
            advance()
    if as_json:
        _json({"labeled": done, "failed": failed})
    else:
        if done:
            table = Table("file", "written", "label", "warning", title=f"{len(done)} labeled")
            for d in done:
                table.add_row(escape(d["file"]), escape(d["output"]), d["record_id"], str(d["warning"]))
            out.print(table)
            if any(d["local_test_ca"] for d in done):
                out.print("[yellow]signed under the LOCAL TEST CA[/yellow] (not a public trust anchor): import your "
                          "certificate with `qorgau labels import-signer`")
        for f in failed:
            where = f" [{f['field']}]" if f["field"] else ""
            err.print(f"[red]failed[/red] {escape(f['file'])}{escape(where)}: {escape(f['error'])}")
        if failed:
            err.print(f"{len(failed)} of {len(items)} file(s) not labeled")
    if failed:
        raise typer.Exit(1)


# --- qorgau verify -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _verifier(platform: Any, trust: list[Path]) -> Iterator[Any]:
    """The platform's label service, or — with ``--trust`` — one that also trusts those PEM roots for this run."""
    from ..core.errors import InvalidInput
    from ..provenance.service import Labels, labels_for

    if not trust:
        yield labels_for(platform)
        return
    parts: list[bytes] = []
    configured = platform.settings.labels_trust_anchors
    for path in ([Path(configured)] if configured else []) + list(trust):
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path} ({type(exc).__name__})", field="--trust") from None
        if b"-----BEGIN CERTIFICATE-----" not in text:
            raise InvalidInput(f"{path} holds no PEM certificate", field="--trust")
        parts.append(text if text.endswith(b"\n") else text + b"\n")
    with tempfile.TemporaryDirectory(prefix="qorgau-trust-") as folder:
        bundle = Path(folder) / "anchors.pem"
        bundle.write_bytes(b"".join(parts))
        clone = _with_settings(platform, labels_trust_anchors=bundle)
        service = Labels(clone)
        service.trust_anchors()  # read the bundle now, while it exists
        yield service


def _with_settings(platform: Any, **changes: Any) -> Any:
    """The same platform (database, keys) seen with other settings; the original is left as it is."""
    import copy

    clone = copy.copy(platform)
    object.__setattr__(clone, "settings", platform.settings.model_copy(update=changes))
    return clone


@_friendly
def verify_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (walked with subfolders).",
                                                metavar="FILE_OR_DIR")],
    report: Annotated[str, typer.Option(
        "--report", help="text, json or html (a self-contained folder audit).")] = "text",
    out_path: Annotated[Optional[Path], typer.Option(
        "--out", help=f"Write the report here (html default: ./{DEFAULT_HTML}; others: standard output).")] = None,
    trust: Annotated[Optional[list[Path]], typer.Option("--trust", help="A PEM file of trust anchors for this run; "
                                                                        "repeatable.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="The HTML report's language: kk, ru or en.")] = "en",
) -> None:
    """Verify AI labels: trusted, untrusted, invalid (tampered, failing assertion) or unlabeled.

    Exit code 0 when every file is trusted; 1 when any is untrusted, invalid, unlabeled or not verifiable; 2 for
    bad options.
    """
    from ..core.errors import InvalidInput, QorgauError
    from ..provenance import report as audit

    if report not in REPORTS:
        raise InvalidInput("--report must be text, json or html", field="--report")
    audit.words(lang)
    items = _walk(paths, recursive=True, skip_outputs=False)
    if not items:
        raise InvalidInput("no files to verify", field="FILE_OR_DIR")
    root = str(paths[0]) if len(paths) == 1 and paths[0].is_dir() else None
    platform = _platform()
    entries: list[audit.AuditEntry] = []
    with _verifier(platform, list(trust or [])) as service, \
            _progress(len(items), "verifying", quiet=report != "text" and out_path is None) as advance:
        for item in items:
            try:
                result = service.verify(_read(item.path, service.max_bytes), filename=item.path.name)
                entries.append(audit.entry_from_report(item.shown, result.to_dict()))
            except QorgauError as exc:
                entries.append(audit.entry_from_error(item.shown, exc.field, exc.message))
            advance()
    if report == "html":
        target = out_path or Path(DEFAULT_HTML)
        _write_atomically(target, audit.render_html(entries, lang=lang, root=root).encode("utf-8"))
        counts = audit.counts(entries)
        out.print(f"wrote {escape(str(target))}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    elif report == "json":
        text = audit.to_json(entries, root=root)
        if out_path is not None:
            _write_atomically(out_path, (text + "\n").encode("utf-8"))
        else:
            sys.stdout.write(text + "\n")
    else:
        _print_entries(entries, out_path)
    if any(e.state != "trusted" for e in entries):
        raise typer.Exit(1)


def _print_entries(entries: list[Any], out_path: Path | None) -> None:
    from ..provenance.report import counts

    console = out
    handle = None
    if out_path is not None:
        handle = open(out_path, "w", encoding="utf-8")  # noqa: SIM115  (closed below)
        console = Console(file=handle, width=200, no_color=True)
    try:
        table = Table("file", "state", "AI system", "operator", "warning", "first failure")
        for e in entries:
            system = " ".join(x for x in (e.register_id, f"({e.system_name})" if e.system_name else None) if x)
            warning = {True: "present", False: "MISSING", None: "—"}[e.warning_present]
            state = e.state + (" (local test CA)" if e.local_test_ca else "")
            table.add_row(escape(e.path), state, escape(system or "—"), escape(e.operator_bin or "—"), warning,
                          escape(e.failure or ""))
        console.print(table)
        console.print(", ".join(f"{n} {s}" for s, n in counts(entries).items() if n))
    finally:
        if handle is not None:
            handle.close()


# --- qorgau labels ------------------------------------------------------------------------------------------------


def _signer_dict(view: Any) -> dict[str, Any]:
    return asdict(view)


def _print_signer(d: dict[str, Any]) -> None:
    out.print(f"[bold]{escape(d['subject'])}[/bold]")
    out.print(f"issuer {escape(d['issuer'])}")
    out.print(f"fingerprint (SHA-256) {d['fingerprint']} · {d['algorithm']} · valid until {d['not_after']}")
    if d["local_test_ca"]:
        out.print("[yellow]LOCAL TEST CA[/yellow]: fine to try labeling; import a certificate from a real CA for "
                  "production (`qorgau labels import-signer`)")


@labels_app.command("signer")
@_friendly
def signer(org: OrgOption = None, as_json: AsJson = False) -> None:
    """The organization's active signing certificate (issued by the local test CA on first use)."""
    from ..provenance.service import labels_for

    platform = _platform()
    with platform.db.transaction(_organization(platform, org)) as s:
        view = _signer_dict(labels_for(platform).signer(s, actor=_principal(0).actor))
    _json(view) if as_json else _print_signer(view)


@labels_app.command("signers")
@_friendly
def signers(org: OrgOption = None, as_json: AsJson = False) -> None:
    """Every signing certificate of the organization, newest first (the active one is the first)."""
    from ..provenance.service import labels_for

    platform = _platform()
    with platform.db.reader(_organization(platform, org)) as s:
        views = [_signer_dict(v) for v in labels_for(platform).signers(s)]
    if as_json:
        _json(views)
        return
    table = Table("subject", "issuer", "fingerprint", "algorithm", "valid until", "local test CA", "added")
    for v in views:
        table.add_row(escape(v["subject"]), escape(v["issuer"]), v["fingerprint"][:16] + "…", v["algorithm"],
                      f"{v['not_after']:%Y-%m-%d}", "yes" if v["local_test_ca"] else "",
                      f"{v['created_at']:%Y-%m-%d %H:%M}")
    out.print(table)


@labels_app.command("import-signer")
@_friendly
def import_signer(
    chain: Annotated[Path, typer.Option("--chain", help="PEM: the end-entity certificate first, then its CAs.",
                                        exists=True, dir_okay=False, readable=True)],
    key: Annotated[Path, typer.Option("--key", help="PEM: the certificate's private key (PKCS#8 or traditional).",
                                      exists=True, dir_okay=False, readable=True)],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the key's password from the first "
                                                                          "line of standard input.")] = False,
    org: OrgOption = None,
    as_json: AsJson = False,
) -> None:
    """Make your own certificate (from a real CA) the organization's signer; the previous one is retired."""
    from ..provenance.service import labels_for

    password = None
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        password = line.encode("utf-8") if line else None
    platform = _platform()
    org_id = _organization(platform, org)
    chain_pem, key_pem = _read(chain, 1 << 20), _read(key, 1 << 20)
    with platform.db.transaction(org_id) as s:
        view = _signer_dict(labels_for(platform).import_signer(s, _principal(org_id), chain_pem=chain_pem,
                                                               key_pem=key_pem, password=password))
    _json(view) if as_json else _print_signer(view)


@labels_app.command("records")
@_friendly
def records(org: OrgOption = None,
            limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many, newest first.")] = 50,
            offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many.")] = 0,
            as_json: AsJson = False) -> None:
    """Labels the organization issued: reference, AI system, format, warning, size and SHA-256 (no file names)."""
    from ..provenance.service import labels_for

    platform = _platform()
    with platform.db.reader(_organization(platform, org)) as s:
        views = [asdict(v) for v in labels_for(platform).records(s, limit=limit, offset=offset)]
    if as_json:
        _json(views)
        return
    table = Table("label", "created", "AI system", "format", "warning", "bytes", "SHA-256")
    for v in views:
        table.add_row(v["record_id"], f"{v['created_at']:%Y-%m-%d %H:%M}",
                      escape(f"{v['register_id']} ({v['system_name']})"), v["media_type"], v["warning_kind"],
                      f"{v['size']:,}", v["sha256"][:16] + "…")
    out.print(table)


@labels_app.command("trust-anchors")
@_friendly
def trust_anchors(pem: Annotated[bool, typer.Option("--pem", help="Print the PEM bundle (for c2patool).")] = False,
                  as_json: AsJson = False) -> None:
    """The roots whose labels count as trusted here: the configured bundle and the local test CA (if trusted)."""
    from ..provenance.service import labels_for

    anchors = labels_for(_platform()).trust_anchors()
    if pem:
        sys.stdout.write("".join(a.pem if a.pem.endswith("\n") else a.pem + "\n" for a in anchors))
        return
    if as_json:
        _json([asdict(a) for a in anchors])
        return
    if not anchors:
        out.print("no trust anchors: set labels_trust_anchors, or label once to create the local test CA")
        return
    table = Table("subject", "fingerprint (SHA-256)", "local test CA")
    for a in anchors:
        table.add_row(escape(a.subject), a.fingerprint, "yes" if a.local_test else "")
    out.print(table)


__all__ = ["label_command", "labels_app", "verify_command"]
