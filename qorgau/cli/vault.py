"""``qorgau vault …``: the identity vault from the command line (a thin adapter over :mod:`qorgau.vault`).

Identifiers typed on a command line stay in the shell's history, so every command that takes one also
reads it from standard input when given ``-`` (one value per line; several lines are one batch).
Registered by ``qorgau/cli/main.py`` as ``app.add_typer(vault_app, name="vault")``.

The command line acts with the rights of whoever can read the data directory (the master key file is in
it): re-identification is recorded in the audit log as ``cli:<user>``, with the purpose code.

Exit codes: 0 done, 1 setup problem, 2 bad usage or refused, 3 a certificate failed verification,
4 done but some values were invalid, unknown or erased (each reported on stderr by line number).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..core.errors import QorgauError

vault_app = typer.Typer(help="The identity vault: pseudonyms, re-identification, crypto-shredding, certificates.",
                        no_args_is_help=True)
certificate_app = typer.Typer(help="Erasure certificates: list, show, verify (offline).", no_args_is_help=True)
vault_app.add_typer(certificate_app, name="certificate")

EXIT_VERIFY_FAILED = 3
EXIT_SOME_FAILED = 4
BATCH = 1000

err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
Org = Annotated[str, typer.Option("--org", help="BIN of the organization whose vault this is.")]
DomainOpt = Annotated[str, typer.Option("--domain", help="Pseudonym domain (a-z, 0-9, '_', '-').")]
TypeOpt = Annotated[str, typer.Option("--type", help="Entity type: KZ_IIN, PHONE_NUMBER, EMAIL_ADDRESS, "
                                                     "KZ_PASSPORT or KZ_ID_CARD.")]


def _friendly(fn: F) -> F:
    """``main.friendly_errors`` (imported when called: main imports this module)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .main import friendly_errors

        return friendly_errors(fn)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _open() -> Any:
    from .main import _open as open_platform

    return open_platform()


def _actor() -> str:
    from .main import CLI_ACTOR

    return CLI_ACTOR


def _org_id(platform: Any, bin_: str) -> int:
    from .main import _org_id as find

    with platform.db.reader() as session:
        return find(session, bin_)


def _values(argument: str, what: str) -> Iterator[tuple[int, str]]:
    """(line number, value): the argument itself, or one per non-empty line of stdin for ``-``."""
    if argument != "-":
        yield 1, argument
        return
    seen = False
    for number, line in enumerate(sys.stdin, start=1):
        value = line.strip()
        if value:
            seen = True
            yield number, value
    if not seen:
        raise QorgauError(f"no {what} on standard input", field="-")


def _batches(items: Iterator[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def _problem(line: int, message: str) -> None:
    err.print(f"[yellow]line {line}:[/yellow] {escape(message)}")


def _cli_principal(org_id: int) -> Any:
    from ..core.auth import Principal

    # Whoever runs the command can read the master key file: the CLI acts with full rights, and says so
    # in the audit log (actor cli:<user>).
    return Principal(kind="cli", id=0, organization_id=org_id, roles=frozenset({"admin", "dpo"}))


# --- tokenize, lookup ----------------------------------------------------------------------------


@vault_app.command("tokenize")
@_friendly
def tokenize(
    value: Annotated[str, typer.Argument(help="The identifier, or '-' to read one per line from stdin.")],
    org: Org,
    entity_type: TypeOpt = "KZ_IIN",
    domain: DomainOpt = "default",
) -> None:
    """Print the pseudonym of an identifier, creating the subject if the vault doesn't know it."""
    from ..vault.service import RowProblem, SubjectRecord, vault_for

    platform = _open()
    org_id = _org_id(platform, org)
    vault = vault_for(platform)
    failed = 0
    for batch in _batches(_values(value, "values")):
        with platform.db.transaction(org_id) as session:
            if len(batch) == 1 and value != "-":
                results: list[Any] = [vault.tokenize(session, entity_type, batch[0][1], domain=domain,
                                                     actor=_actor())]
            else:
                from ..vault.service import LOOKUP_TYPES

                if entity_type not in LOOKUP_TYPES:
                    raise QorgauError(f"--type must be one of {', '.join(sorted(LOOKUP_TYPES))}", field="--type")
                results = vault.tokenize_many(session, [SubjectRecord({entity_type: v}) for _, v in batch],
                                              domain=domain, actor=_actor())
        for (line, _), result in zip(batch, results):
            if isinstance(result, RowProblem):
                failed += 1
                _problem(line, result.reason)
                _print("")
            else:
                _print(result.pseudonym)
    if failed:
        raise typer.Exit(EXIT_SOME_FAILED)


@vault_app.command("lookup")
@_friendly
def lookup(
    value: Annotated[str, typer.Argument(help="The identifier, or '-' to read one per line from stdin.")],
    org: Org,
    entity_type: TypeOpt = "KZ_IIN",
    domain: DomainOpt = "default",
) -> None:
    """Find the subject holding an identifier (blind index; nothing is decrypted): prints
    'SUBJECT_ID PSEUDONYM', or reports the line as not found."""
    from ..vault.service import vault_for

    platform = _open()
    org_id = _org_id(platform, org)
    vault = vault_for(platform)
    missing = 0
    for line, item in _values(value, "values"):
        with platform.db.transaction(org_id) as session:
            subject_id = vault.lookup(session, entity_type, item)
            pseudonym = None if subject_id is None else vault.pseudonym_for(session, subject_id, domain,
                                                                            actor=_actor())
        if subject_id is None:
            missing += 1
            _problem(line, "not in the vault")
            _print("")
        else:
            _print(f"{subject_id} {pseudonym}")
    if missing:
        raise typer.Exit(EXIT_SOME_FAILED)


# --- re-identification ---------------------------------------------------------------------------


@vault_app.command("detokenize")
@_friendly
def detokenize(
    pseudonym: Annotated[str, typer.Argument(help="A pseudonym (ps_…), or '-' to read one per line from stdin.")],
    org: Org,
    purpose: Annotated[str, typer.Option("--purpose", help="Purpose code, e.g. customer-request (audited).")],
    domain: DomainOpt = "default",
) -> None:
    """Re-identify subjects: one JSON object per pseudonym (identifiers, or status erased/unknown)."""
    from ..vault.service import Identity, ReidentificationRefused, SubjectErased, vault_for

    platform = _open()
    org_id = _org_id(platform, org)
    vault = vault_for(platform)
    principal = _cli_principal(org_id)
    failed = 0
    for batch in _batches(_values(pseudonym, "pseudonyms")):
        with platform.db.transaction(org_id) as session:
            if pseudonym != "-":
                found: dict[str, Any] = {batch[0][1]: vault.detokenize(
                    session, batch[0][1], domain=domain, purpose=purpose, principal=principal, actor=_actor())}
            else:
                found = vault.detokenize_many(session, [p for _, p in batch], domain=domain, purpose=purpose,
                                              principal=principal, actor=_actor())
        for line, item in batch:
            result = found.get(item)
            if isinstance(result, Identity):
                _print(json.dumps({"pseudonym": item, "status": "found", "identifiers": result.identifiers},
                                  ensure_ascii=False))
                continue
            failed += 1
            if isinstance(result, SubjectErased):
                _problem(line, result.message)
                _print(json.dumps({"pseudonym": item, "status": "erased",
                                   "erased_at": result.erased_at.isoformat()}))
            elif isinstance(result, ReidentificationRefused):
                _problem(line, result.message)
                _print(json.dumps({"pseudonym": item, "status": "refused"}))
            else:
                _problem(line, "no subject has this pseudonym in this domain")
                _print(json.dumps({"pseudonym": item, "status": "unknown"}))
    if failed:
        raise typer.Exit(EXIT_SOME_FAILED)


# --- crypto-shredding ----------------------------------------------------------------------------


@vault_app.command("shred")
@_friendly
def shred(
    pseudonym: Annotated[str, typer.Argument(help="The subject's pseudonym (ps_…).")],
    org: Org,
    reason: Annotated[str, typer.Option("--reason", help="Why, e.g. 'consent withdrawn' (audited; no personal data).")],
    domain: DomainOpt = "default",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", dir_okay=False,
                                                   help="Write the erasure certificate here (default: stdout).")] = None,
) -> None:
    """Crypto-shred a subject: destroy their key, delete their lookups, issue a signed erasure certificate."""
    from ..vault.service import vault_for

    platform = _open()
    org_id = _org_id(platform, org)
    with platform.db.transaction(org_id) as session:
        certificate = vault_for(platform).shred(session, pseudonym, domain=domain, reason=reason, actor=_actor())
    if output is None:
        sys.stdout.write(certificate.text)
    else:
        output.write_text(certificate.text, encoding="utf-8")
    err.print(f"[green]erased[/green] {certificate.pseudonym} on {certificate.erased_at:%Y-%m-%d %H:%M:%S} UTC; "
              f"certificate {certificate.certificate_id} (audit entry {certificate.audit_entry_id})"
              + (f" written to {escape(str(output))}" if output else ""))


# --- statistics ----------------------------------------------------------------------------------


@vault_app.command("stats")
@_friendly
def stats(org: Org, days: Annotated[int, typer.Option(min=1, max=366, help="Re-identifications over this many days.")] = 30,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Counts: subjects (active, erased), identifier types, lookups, pseudonyms, re-identifications."""
    from ..vault.service import vault_for

    platform = _open()
    org_id = _org_id(platform, org)
    with platform.db.reader(org_id) as session:
        result = vault_for(platform).stats(session, days=days)
    if as_json:
        _print(json.dumps(result.to_dict(), ensure_ascii=False, sort_keys=True))
        return
    out = Console()
    table = Table("measure", "count", title=f"Identity vault of {org}")
    for label, value in (("subjects", result.subjects), ("active", result.active), ("erased", result.erased),
                         ("with invalid identifiers", result.with_invalid), ("lookup rows", result.lookups),
                         ("pseudonyms", result.pseudonyms), ("erasure certificates", result.certificates)):
        table.add_row(label, str(value))
    for entity_type, count in sorted(result.by_type.items()):
        table.add_row(f"  with {entity_type}", str(count))
    for purpose, count in result.reidentifications.items():
        table.add_row(f"re-identified for {purpose} ({days} days)", str(count))
    out.print(table)


# --- certificates --------------------------------------------------------------------------------


@certificate_app.command("list")
@_friendly
def certificate_list(org: Org, limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50) -> None:
    """List erasure certificates, newest first."""
    from ..vault.service import vault_for

    platform = _open()
    org_id = _org_id(platform, org)
    with platform.db.reader(org_id) as session:
        items = vault_for(platform).list_certificates(session, limit=limit)
    table = Table(title="Erasure certificates")
    table.add_column("certificate", no_wrap=True)
    table.add_column("pseudonym", no_wrap=True)
    table.add_column("erased (UTC)", no_wrap=True)
    table.add_column("audit entry")
    table.add_column("reason", overflow="fold")
    for item in items:
        table.add_row(item.certificate_id, item.pseudonym, item.erased_at.strftime("%Y-%m-%d %H:%M:%S"),
                      str(item.audit_entry_id), item.reason)
    Console().print(table)


@certificate_app.command("show")
@_friendly
def certificate_show(
    certificate_id: Annotated[str, typer.Argument(help="The certificate id (ec_…).")],
    org: Org,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", dir_okay=False, help="Write it here.")] = None,
) -> None:
    """Print (or write) an erasure certificate exactly as it was signed."""
    from ..vault.service import vault_for

    platform = _open()
    org_id = _org_id(platform, org)
    with platform.db.reader(org_id) as session:
        certificate = vault_for(platform).get_certificate(session, certificate_id)
    if output is None:
        sys.stdout.write(certificate.text)
    else:
        output.write_text(certificate.text, encoding="utf-8")


def _verify(file: str, certificate_key: str | None, audit_key: str | None) -> None:
    from ..vault.certificates import MAX_DOCUMENT_BYTES, verify_certificate

    if file == "-":
        text = sys.stdin.read(MAX_DOCUMENT_BYTES + 1)
    else:
        path = Path(file)
        try:
            with path.open("rb") as fh:
                text = fh.read(MAX_DOCUMENT_BYTES + 1).decode("utf-8", errors="replace")
        except OSError as exc:
            raise QorgauError(f"cannot read {file}: {exc.strerror}", field="FILE") from None
    result = verify_certificate(text, certificate_public_key=certificate_key, audit_public_key=audit_key)
    out = Console()
    for check in result.checks:
        mark = "[green]✓[/green]" if check.ok else "[red]✗[/red]"
        out.print(f"{mark} {check.name}: {escape(check.detail)}")
    if result.ok:
        out.print(f"[green]VALID[/green]: erasure certificate {result.certificate_id}")
        if certificate_key is None or audit_key is None:
            err.print("[yellow]note:[/yellow] the keys were not pinned; compare the public keys in the certificate "
                      "with the operator's (GET /api/v1/vault/certificate-key, or `qorgau vault keys`) or pass "
                      "--certificate-key and --audit-key")
        return
    out.print(f"[red]INVALID[/red]: {sum(1 for c in result.checks if not c.ok)} check(s) failed")
    raise typer.Exit(EXIT_VERIFY_FAILED)


VerifyFile = Annotated[str, typer.Argument(metavar="FILE", help="The certificate (JSON), or '-' for stdin.")]
CertKey = Annotated[Optional[str], typer.Option("--certificate-key", help="Pin the certificate signing key (hex).")]
AuditKey = Annotated[Optional[str], typer.Option("--audit-key", help="Pin the audit tree-head signing key (hex).")]


@certificate_app.command("verify")
@_friendly
def certificate_verify(file: VerifyFile, certificate_key: CertKey = None, audit_key: AuditKey = None) -> None:
    """Verify an erasure certificate offline: signature, audit entry, inclusion proof, signed tree head.
    Needs no data dir. Exit code 0 valid, 3 invalid."""
    _verify(file, certificate_key, audit_key)


@vault_app.command("verify-certificate")
@_friendly
def verify_certificate_command(file: VerifyFile, certificate_key: CertKey = None, audit_key: AuditKey = None) -> None:
    """Verify an erasure certificate offline (same as `qorgau vault certificate verify`)."""
    _verify(file, certificate_key, audit_key)


@vault_app.command("keys")
@_friendly
def keys() -> None:
    """Print the public keys that sign erasure certificates and audit tree heads (publish and pin them)."""
    from ..vault.service import vault_for

    platform = _open()
    with platform.db.transaction() as session:
        found = vault_for(platform).certificate_keys(session)
    _print(f"certificate signing key (Ed25519): {found['certificate_public_key']}")
    _print(f"audit tree-head key (Ed25519):     {found['audit_public_key']}")
