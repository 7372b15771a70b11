"""``qorgau consent``: purposes, counterparties, legal bases, consents, the decision point, withdrawal,
receipts and the webhook dispatcher. Thin adapters over :mod:`qorgau.consent.service`.

Identifiers and names never go on the command line (shell history, ``ps``): ``--iin -`` reads the IIN
from the first line of stdin and, for ``give``, an optional second line is the subject's full name.

Exit codes: 0 done (``check``: allowed), 2 bad input, 3 ``check`` denied or a receipt failed verification.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

consent_app = typer.Typer(help="Consent: purposes, counterparties, consents, the decision point, withdrawal, "
                               "receipts, webhooks.", no_args_is_help=True)
purposes_app = typer.Typer(help="Processing purposes (the platform's and your own).", no_args_is_help=True)
counterparties_app = typer.Typer(help="Processors and third parties you share data with.", no_args_is_help=True)
bases_app = typer.Typer(help="Legal bases other than consent (contract, law, court order…).", no_args_is_help=True)
receipt_app = typer.Typer(help="Signed consent and withdrawal receipts.", no_args_is_help=True)
outbox_app = typer.Typer(help="Webhook deliveries (the transactional outbox).", no_args_is_help=True)
consent_app.add_typer(purposes_app, name="purposes")
consent_app.add_typer(counterparties_app, name="counterparties")
consent_app.add_typer(bases_app, name="legal-bases")
consent_app.add_typer(receipt_app, name="receipt")
consent_app.add_typer(outbox_app, name="outbox")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
Org = Annotated[str, typer.Option("--org", help="The organization's BIN.")]
Iin = Annotated[Optional[str], typer.Option("--iin", help="'-': read the subject's IIN from stdin (never an argument).")]
Pseudonym = Annotated[Optional[str], typer.Option("--pseudonym", help="The subject's vault pseudonym (ps_…).")]
Domain = Annotated[str, typer.Option("--domain", help="The pseudonym's domain.")]
DENIED = 3


def _friendly(fn: F) -> F:
    """Domain errors as one red line and exit code 2 (``main.friendly_errors`` for setup problems), with the
    field escaped: ``[subject.identifier]`` is a field name, not Rich markup."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        from ..core.errors import QorgauError

        try:
            return fn(*args, **kwargs)
        except QorgauError as exc:
            where = f" [{exc.field}]" if exc.field else ""
            err.print(f"[red]error{escape(where)}:[/red] {escape(exc.message)}")
            raise typer.Exit(2) from None

    @functools.wraps(fn)
    def outer(*args: Any, **kwargs: Any) -> Any:
        from .main import friendly_errors

        return friendly_errors(guarded)(*args, **kwargs)

    return outer  # type: ignore[return-value]


def _platform() -> Any:
    from .main import _open

    return _open()


def _actor() -> str:
    from .main import CLI_ACTOR

    return CLI_ACTOR


def _org(platform: Any, bin: str) -> int:
    from .main import _org_id

    with platform.db.reader() as s:
        return _org_id(s, bin)


def _service(platform: Any) -> Any:
    from ..consent.service import consent_for

    return consent_for(platform)


def _stdin_lines(count: int) -> list[str]:
    if sys.stdin.isatty():
        err.print("[dim]reading from stdin (the IIN on the first line" + (", the full name on the second" if count > 1
                  else "") + "), end with Ctrl-D[/dim]")
    lines = [line.strip() for line in sys.stdin.read().splitlines()]
    return (lines + [""] * count)[:count]


def _subject(iin: str | None, pseudonym: str | None, domain: str, *, with_name: bool = False) -> tuple[Any, str | None]:
    from ..consent.decision import SubjectRef
    from ..core.errors import InvalidInput

    if (iin is None) == (pseudonym is None):
        raise InvalidInput("give the subject as --iin - (read from stdin) or --pseudonym ps_…", field="--iin")
    if pseudonym is not None:
        return SubjectRef(pseudonym=pseudonym, domain=domain), None
    if iin != "-":
        raise InvalidInput("identifiers are read from stdin, never taken as arguments: use --iin -", field="--iin")
    lines = _stdin_lines(2 if with_name else 1)
    if not lines[0]:
        raise InvalidInput("stdin held no IIN", field="--iin")
    return SubjectRef(identifier_type="KZ_IIN", identifier=lines[0], domain=domain), (lines[1] or None) if with_name else None


def _split(values: list[str] | None) -> list[str]:
    out_: list[str] = []
    for value in values or []:
        out_.extend(v.strip() for v in value.split(",") if v.strip())
    return out_


def _datetime(value: str | None, option: str) -> datetime | None:
    from ..core.errors import InvalidInput

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("not an ISO 8601 timestamp (e.g. 2027-01-01T00:00:00+05:00)", field=option) from None
    if parsed.tzinfo is None:
        raise InvalidInput("give the timezone too (e.g. +05:00)", field=option)
    return parsed


def _json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str, ensure_ascii=False))


# --- purposes ----------------------------------------------------------------------------------


@purposes_app.command("list")
@_friendly
def purposes_list(org: Annotated[Optional[str], typer.Option("--org", help="Include this organization's own.")] = None,
                  lang: Annotated[str, typer.Option(help="kk, ru or en.")] = "en",
                  as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False) -> None:
    """List processing purposes: the platform's defaults, plus an organization's own with --org."""
    from ..consent.purposes import default_taxonomy

    if org:
        platform = _platform()
        org_id = _org(platform, org)
        with platform.db.reader(org_id) as s:
            purposes = _service(platform).purposes(s)
    else:
        purposes = list(default_taxonomy().purposes.values())
    if as_json:
        _json([p.to_dict() for p in purposes])
        return
    table = Table(title="Purposes")
    for col in ("code", "name", "own"):
        table.add_column(col)
    for p in purposes:
        table.add_row(p.code, escape(p.name(lang)), "yes" if p.organization_id else "")
    out.print(table)


@purposes_app.command("import")
@_friendly
def purposes_import(file: Annotated[Path, typer.Argument(help="A purposes YAML file (format of purposes.yaml).")],
                    org: Org) -> None:
    """Add or update an organization's own purposes from a YAML file (all or nothing; errors name the line)."""
    from ..consent.purposes import TaxonomyError

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError(str(file), None, "file", f"cannot be read as UTF-8 text ({type(exc).__name__})") from None
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        items = _service(platform).import_purposes(s, text, source=file.name, actor=_actor())
    out.print(f"[green]imported[/green] {len(items)} purposes: {', '.join(p.code for p in items)}")


# --- counterparties ------------------------------------------------------------------------------


@counterparties_app.command("add")
@_friendly
def counterparties_add(
    org: Org,
    name: Annotated[str, typer.Option(help="Legal name.")],
    kind: Annotated[str, typer.Option(help="processor or third_party.")],
    bin: Annotated[Optional[str], typer.Option("--bin", help="BIN (Kazakhstani entities).")] = None,
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 country.")] = "KZ",
    registration: Annotated[Optional[str], typer.Option(help="Registration number (foreign entities).")] = None,
    webhook_url: Annotated[Optional[str], typer.Option(help="Where withdrawal notices are POSTed.")] = None,
) -> None:
    """Register a processor or third party; prints its webhook secret and confirmation token once."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        created = _service(platform).add_counterparty(s, name=name, kind=kind, bin=bin, foreign_registration=registration,
                                                      country=country, webhook_url=webhook_url, actor=_actor())
        cp_id = created.counterparty.id
    out.print(f"counterparty {cp_id} created")
    if created.webhook_secret:
        print(f"webhook signing secret (shown once): {created.webhook_secret}")
    print(f"confirmation token (shown once): {created.token}")


@counterparties_app.command("list")
@_friendly
def counterparties_list(org: Org) -> None:
    """List an organization's processors and third parties."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.reader(org_id) as s:
        rows = _service(platform).list_counterparties(s)
        table = Table(title="Counterparties")
        for col in ("id", "name", "kind", "country", "BIN / registration", "webhook", "active"):
            table.add_column(col)
        for c in rows:
            table.add_row(str(c.id), escape(c.name), c.kind, c.country, c.bin or c.foreign_registration or "",
                          escape(c.webhook_url or ""), "yes" if c.active else "no")
    out.print(table)


# --- legal bases ----------------------------------------------------------------------------------


@bases_app.command("add")
@_friendly
def bases_add(org: Org, kind: Annotated[str, typer.Option(help="contract, law, court_order, vital_interest, public_task.")],
              purpose: Annotated[str, typer.Option(help="Purpose code.")],
              reference: Annotated[str, typer.Option(help="Law and article, court decision or contract number.")],
              valid_until: Annotated[Optional[str], typer.Option(help="ISO 8601 with timezone.")] = None,
              iin: Iin = None, pseudonym: Pseudonym = None, domain: Domain = "default") -> None:
    """Record a legal basis for every subject, or for one (--iin - / --pseudonym)."""
    subject = None
    if iin is not None or pseudonym is not None:
        subject, _ = _subject(iin, pseudonym, domain)
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        basis = _service(platform).add_legal_basis(s, kind=kind, purpose=purpose, reference=reference, subject=subject,
                                                   valid_until=_datetime(valid_until, "--valid-until"), actor=_actor())
        out.print(f"legal basis {basis.id} recorded")


@bases_app.command("list")
@_friendly
def bases_list(org: Org) -> None:
    """List an organization's legal bases."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.reader(org_id) as s:
        table = Table(title="Legal bases")
        for col in ("id", "kind", "purpose", "reference", "per subject", "valid until"):
            table.add_column(col)
        for b in _service(platform).list_legal_bases(s):
            table.add_row(str(b.id), b.kind, b.purpose, escape(b.reference), "yes" if b.subject_id else "",
                          str(b.valid_until or ""))
    out.print(table)


# --- consents --------------------------------------------------------------------------------------


@consent_app.command("give")
@_friendly
def give(
    org: Org,
    purpose: Annotated[str, typer.Option(help="Purpose code (qorgau consent purposes list).")],
    data: Annotated[list[str], typer.Option("--data", help="Data categories (repeat or comma-separate).")],
    channel: Annotated[str, typer.Option(help="state_service, non_state_service, written or other_verifiable.")],
    iin: Iin = None, pseudonym: Pseudonym = None, domain: Domain = "default",
    valid_until: Annotated[Optional[str], typer.Option(help="End of the term, ISO 8601 with timezone.")] = None,
    third_party: Annotated[bool, typer.Option("--third-party/--no-third-party", help="Transfer to third parties allowed.")] = False,
    counterparty: Annotated[Optional[list[int]], typer.Option("--counterparty", help="Counterparty ids (repeat).")] = None,
    country: Annotated[Optional[list[str]], typer.Option("--country", help="Cross-border destinations (repeat).")] = None,
    public_sources: Annotated[bool, typer.Option("--public-sources/--no-public-sources")] = False,
    other: Annotated[Optional[str], typer.Option(help="Other information (Art.8 p.4 (8)); no personal data.")] = None,
    evidence_ref: Annotated[Optional[str], typer.Option(help="Reference of the signed document.")] = None,
    evidence_file: Annotated[Optional[Path], typer.Option(help="The signed document: its SHA-256 is stored, not it.")] = None,
) -> None:
    """Record a consent. With --iin -, stdin holds the IIN and (optionally) the full name on a second line."""
    subject, full_name = _subject(iin, pseudonym, domain, with_name=True)
    digest = None
    if evidence_file is not None:
        digest = hashlib.sha256(evidence_file.read_bytes()).hexdigest()
    countries = _split(country)
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        consent = _service(platform).give(
            s, subject, purpose=purpose, data_categories=_split(data), valid_until=_datetime(valid_until, "--valid-until"),
            third_party_transfer=third_party, counterparties=counterparty or [], cross_border=bool(countries),
            countries=countries, public_sources=public_sources, other=other, channel=channel,
            evidence_ref=evidence_ref, evidence_sha256=digest, actor=_actor(), full_name=full_name)
        out.print(f"consent {consent.id} recorded (receipt {consent.receipt_id})")


@consent_app.command("check")
@_friendly
def check(org: Org, purpose: Annotated[str, typer.Option(help="Purpose code.")],
          data: Annotated[Optional[list[str]], typer.Option("--data", help="Data categories to be processed.")] = None,
          iin: Iin = None, pseudonym: Pseudonym = None, domain: Domain = "default") -> None:
    """Ask the decision point; prints the decision as JSON. Exit 0 when allowed, 3 when denied."""
    subject, _ = _subject(iin, pseudonym, domain)
    platform = _platform()
    org_id = _org(platform, org)
    decision = _service(platform).check(subject, organization_id=org_id, purpose=purpose, data_categories=_split(data))
    _json(decision.to_dict())
    if not decision.allow:
        raise typer.Exit(DENIED)


@consent_app.command("list")
@_friendly
def list_consents(org: Org, purpose: Annotated[Optional[str], typer.Option(help="Only this purpose.")] = None,
                  status: Annotated[Optional[str], typer.Option(help="active, withdrawn, expired, superseded.")] = None,
                  limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
                  iin: Iin = None, pseudonym: Pseudonym = None, domain: Domain = "default") -> None:
    """List consents (newest first), or one subject's (--iin - / --pseudonym)."""
    from ..core.db import utcnow

    platform = _platform()
    org_id = _org(platform, org)
    service = _service(platform)
    with platform.db.reader(org_id) as s:
        if iin is not None or pseudonym is not None:
            rows = service.consents_of_subject(s, _subject(iin, pseudonym, domain)[0])
        else:
            rows = service.list_consents(s, purpose=purpose, status=status, limit=limit)
        now = utcnow()
        table = Table(title="Consents")
        for col in ("id", "purpose", "status", "categories", "channel", "given", "until"):
            table.add_column(col)
        for c in rows:
            table.add_row(str(c.id), c.purpose, c.status_at(now), ", ".join(c.data_categories), c.channel,
                          f"{c.given_at:%Y-%m-%d %H:%M}", f"{c.valid_until:%Y-%m-%d}" if c.valid_until else "")
    out.print(table)


@consent_app.command("withdraw")
@_friendly
def withdraw(consent_id: Annotated[int, typer.Argument(help="The consent's id.")], org: Org,
             channel: Annotated[str, typer.Option(help="How the subject withdrew it.")] = "written",
             idempotency_key: Annotated[Optional[str], typer.Option(help="Makes a retried command safe.")] = None,
             receipt_out: Annotated[Optional[Path], typer.Option("--receipt-out", help="Write the signed receipt here.")] = None) -> None:
    """Withdraw a consent: processing stops at once (or the refusal names the legal basis)."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        w = _service(platform).withdraw(s, consent_id, channel=channel, actor=_actor(), idempotency_key=idempotency_key)
    if w.refused:
        assert w.basis is not None
        out.print(f"[yellow]withdrawal recorded, processing continues under a legal basis[/yellow]: {w.basis.kind} — "
                  f"{escape(w.basis.reference)} (L-PD-WITHDRAW)")
    else:
        out.print(f"[green]withdrawn[/green]{' (already, earlier)' if w.repeated else ''}: processing stopped"
                  + (f"; subject crypto-shredded (certificate {w.erasure_certificate_id})" if w.shredded else ""))
    out.print(f"counterparties notified: {len(w.notifications)}; receipt {w.receipt['receipt']['withdrawalReceiptID']}")
    if receipt_out is not None:
        receipt_out.write_text(w.receipt_text, encoding="utf-8")
        out.print(f"receipt written to {receipt_out}")


@receipt_app.command("show")
@_friendly
def receipt_show(consent_id: Annotated[int, typer.Argument(help="The consent's id.")], org: Org,
                 output: Annotated[Optional[Path], typer.Option("--out", help="Write it to this file.")] = None,
                 withdrawal: Annotated[bool, typer.Option("--withdrawal", help="The withdrawal receipt instead.")] = False) -> None:
    """Print (or write) a consent's signed receipt, or its withdrawal receipt."""
    from ..consent import receipts
    from ..core.errors import NotFound

    platform = _platform()
    org_id = _org(platform, org)
    service = _service(platform)
    with platform.db.reader(org_id) as s:
        if withdrawal:
            w = service.withdrawal_of(s, consent_id)
            if w is None:
                raise NotFound("this consent was not withdrawn", field="consent_id")
            text = w.receipt_text
        else:
            text = receipts.text_of(service.receipt(s, consent_id))
    if output is not None:
        output.write_text(text, encoding="utf-8")
        out.print(f"receipt written to {output}")
    else:
        sys.stdout.write(text)


@receipt_app.command("verify")
@_friendly
def receipt_verify(file: Annotated[Path, typer.Argument(help="A receipt (JSON); '-' reads stdin.")],
                   public_key: Annotated[Optional[str], typer.Option(help="Pin this Ed25519 public key (hex).")] = None,
                   platform_key: Annotated[bool, typer.Option("--platform-key", help="Pin this platform's receipt key.")] = False) -> None:
    """Verify a receipt offline (signature; with a pinned key, also who signed). Exit 3 if it fails."""
    from ..consent import receipts

    raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    if platform_key:
        platform = _platform()
        with platform.db.transaction() as s:  # the first use creates the key: a write transaction
            public_key = receipts.public_key_hex(s, platform.keyring)
    result = receipts.verify_receipt(raw, public_key=public_key)
    for name, ok, detail in result.checks:
        out.print(f"{'[green]ok[/green]  ' if ok else '[red]FAIL[/red]'} {name}: {escape(detail)}")
    if not result.valid:
        raise typer.Exit(DENIED)
    out.print(f"[green]valid[/green] {result.receipt_type} {result.receipt_id}")


# --- the dispatcher and the outbox ---------------------------------------------------------------


@consent_app.command("dispatcher")
@_friendly
def dispatcher(once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
               poll: Annotated[Optional[float], typer.Option(help="Idle poll interval, seconds.")] = None,
               lease: Annotated[Optional[float], typer.Option(help="Lease of a claimed message, seconds.")] = None,
               workers: Annotated[int, typer.Option(min=1, max=64, help="Concurrent deliveries.")] = 8) -> None:
    """Deliver webhooks from the outbox until stopped (SIGTERM/Ctrl-C). Any number may run at once."""
    from ..consent.dispatcher import Dispatcher
    from ..consent.service import expire_all

    platform = _platform()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    d = Dispatcher(platform, poll_seconds=poll, lease_seconds=lease, workers=workers,
                   periodic=[(60.0, lambda: expire_all(platform))])
    if once:
        n = d.run_once()
        d.stop()
        out.print(f"{n} messages tried ({d.delivered} delivered, {d.failed} failed)")
        return
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()
        d.stop(timeout=0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    err.print(f"dispatcher {d.owner} running (poll {d.poll}s, lease {d.lease}s); Ctrl-C stops it")
    d.run_forever()
    out.print(f"stopped: {d.delivered} delivered, {d.failed} failed attempts")


@outbox_app.command("list")
@_friendly
def outbox_list(org: Org, status: Annotated[Optional[str], typer.Option(help="pending, delivered or dead.")] = None,
                limit: Annotated[int, typer.Option(min=1, max=1000)] = 50) -> None:
    """Webhook deliveries of an organization (no payloads, no secrets)."""
    from ..consent import outbox

    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.reader(org_id) as s:
        table = Table(title="Outbox")
        for col in ("id", "topic", "status", "attempts", "created", "delivered", "last error"):
            table.add_column(col)
        for m in outbox.list_messages(s, status=status, limit=limit):
            table.add_row(str(m.id), m.topic, m.status, f"{m.attempts}/{m.max_attempts}", f"{m.created_at:%Y-%m-%d %H:%M:%S}",
                          f"{m.delivered_at:%H:%M:%S}" if m.delivered_at else "", m.last_error or "")
    out.print(table)


@outbox_app.command("retry")
@_friendly
def outbox_retry(message_id: Annotated[int, typer.Argument()], org: Org) -> None:
    """Give a dead-lettered message another round of attempts."""
    from ..consent import outbox

    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        state = outbox.retry_dead(s, message_id)
    out.print(f"message {state.id} is pending again")


@consent_app.command("expire")
@_friendly
def expire() -> None:
    """Mark consents past their term as expired (checks deny them from the term's end anyway)."""
    from ..consent.service import expire_all

    out.print(f"{expire_all(_platform())} consents expired")
