"""The ``qorgau`` command line. Every command is a thin adapter over a service function."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import __version__
from ..core import audit, auth, demo
from ..core.errors import QorgauError
from ..core.keys import KeyFileError, rotate_master_key
from ..core.platform import NotInitialized, Platform
from ..core.settings import SettingsError, get_settings

app = typer.Typer(help="qorgau — Kazakhstan's personal-data law and AI law, made operational.",
                  no_args_is_help=True, rich_markup_mode="rich")
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
users_app = typer.Typer(help="Users of an organization.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations (tenants), each with a BIN.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for machines, scoped to one organization and a set of roles.",
                       no_args_is_help=True)
master_app = typer.Typer(help="The master key that wraps every data key.", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only audit log (RFC 6962 Merkle tree).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(master_app, name="master-key")
app.add_typer(audit_app, name="audit")

from .redact import redact_command as _redact  # noqa: E402  (discovery commands live in their own modules)
from .scan import scan as _scan  # noqa: E402

app.command("scan")(_scan)
app.command("redact")(_redact)
from .datamap import datamap_app as _datamap_app, jobs_app as _jobs_app  # noqa: E402
app.add_typer(_jobs_app, name="jobs")
app.add_typer(_datamap_app, name="datamap")
from .consent import consent_app as _consent_app  # noqa: E402
app.add_typer(_consent_app, name="consent")
from .citizens import citizens_app as _citizens_app  # noqa: E402  (citizen identities)
app.add_typer(_citizens_app, name="citizens")
from .split import depersonalize_command, join_back_command, split_command  # noqa: E402  (vault datasets)
app.command("split")(split_command)
app.command("join-back")(join_back_command)
app.command("depersonalize")(depersonalize_command)
from .vault import vault_app  # noqa: E402  (the identity vault)
app.add_typer(vault_app, name="vault")
from .oversight import ai_systems_app, decision_types_app, decisions_app  # noqa: E402  (AI decisions, issue 6)
from . import aisystems as _aisystems_cli  # noqa: E402,F401  (the AI systems register joins ai-systems, issue 7)
app.add_typer(ai_systems_app, name="ai-systems")
from .leaks import leaks_app  # noqa: E402  (the leak register, issue 8)
app.add_typer(leaks_app, name="leaks")
app.add_typer(decisions_app, name="decisions")
app.add_typer(decision_types_app, name="decision-types")
from .rules import rules_app as _rules_app  # noqa: E402  (the law as code, issue 7)
app.add_typer(_rules_app, name="rules")
# --- AI content labels (issue 9) ---
from .labels import label_command as _label, labels_app as _labels_app, verify_command as _verify  # noqa: E402
app.command("label")(_label)
app.command("verify")(_verify)
app.add_typer(_labels_app, name="labels")

out = Console()
err = Console(stderr=True)
CLI_ACTOR = "cli:" + (os.environ.get("USER") or "local")[:32]
F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Turn domain errors into one red line and exit code 2 (1 for setup problems), no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except QorgauError as exc:
            where = escape(f" [{exc.field}]") if exc.field else ""
            err.print(f"[red]error{where}:[/red] {escape(exc.message)}")
            raise typer.Exit(2) from None
        except (NotInitialized, KeyFileError, SettingsError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        out.print(f"qorgau {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Data directory (overrides QORGAU_DATA_DIR).")] = None,
    database_url: Annotated[Optional[str], typer.Option(help="Database URL (overrides QORGAU_DATABASE_URL).")] = None,
) -> None:
    """Find personal data, keep identities apart, enforce consent, oversee AI, register leaks."""
    if data_dir is not None:
        os.environ["QORGAU_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        os.environ["QORGAU_DATABASE_URL"] = database_url
    get_settings.cache_clear()


def _open() -> Platform:
    return Platform.open(get_settings())


def _org_id(session: Any, bin: str) -> int:
    org = auth.find_organization_by_bin(session, bin)
    if org is None:
        raise QorgauError("no organization with this BIN; see `qorgau orgs list`", field="--org")
    return org.id


@contextlib.contextmanager
def _reader(platform: Platform, org_bin: str | None) -> Iterator[Any]:
    """A read session over every organization, or scoped to the one with this BIN."""
    with platform.db.reader() as s:
        org_id = _org_id(s, org_bin) if org_bin else None
    with platform.db.reader(org_id) as s:
        yield s


# --- setup -------------------------------------------------------------------------------------


@app.command()
@friendly_errors
def init(seed_demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Seed the demo organization and users.")] = False) -> None:
    """Create the data dir, the master key (mode 0600) and the database schema. Safe to run again."""
    settings = get_settings()
    platform = Platform.initialize(settings)
    out.print(f"[green]ready[/green]: data dir {settings.data_dir.resolve()}, database {platform.db.dialect}")
    if seed_demo:
        logins = demo.seed_demo(platform)
        if logins is None:
            out.print("Demo organization already exists (its one-time passwords were shown when it was created; "
                      "`qorgau users reset-password USERNAME` issues a new one).")
        else:
            table = Table(title="DEMO organization — demo users (one-time passwords, change at first login)")
            for col in ("username", "roles", "one-time password"):
                table.add_column(col)
            for login in logins:
                table.add_row(login.username, ", ".join(login.roles), login.one_time_password)
            out.print(table)
    platform.close()


@app.command()
@friendly_errors
def serve(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default from settings: 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default from settings: 8080).")] = None,
) -> None:
    """Start the HTTP API and web UI."""
    import uvicorn

    from ..api.app import create_app

    settings = get_settings().with_overrides(host=host, port=port)
    platform = Platform.open(settings)
    out.print(f"qorgau {__version__} on http://{settings.host}:{settings.port}  (API docs: /api/docs)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # /health reads the schema revision each time
    # uvicorn's access log prints raw paths and query strings; qorgau.access logs route templates instead.
    uvicorn.run(create_app(platform), host=settings.host, port=settings.port, log_level="info",
                access_log=False, server_header=False)


@db_app.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply pending migrations."""
    platform = Platform.initialize(get_settings())
    from ..core import migrate

    out.print(f"schema at {migrate.current_revision(platform.db.engine)}")


@db_app.command("current")
@friendly_errors
def db_current() -> None:
    """Show the schema revision of the database and of the code."""
    from ..core import migrate
    from ..core.db import Database

    db = Database(get_settings().resolved_database_url)
    out.print(f"database: {migrate.current_revision(db.engine) or 'empty'}; code: {migrate.head_revision(db.engine)}")


# --- organizations, users, API keys ------------------------------------------------------------


@orgs_app.command("create")
@friendly_errors
def orgs_create(name: Annotated[str, typer.Option(help="Legal name.")],
                bin: Annotated[str, typer.Option("--bin", help="12-digit BIN (checksum-validated).")],
                authority: Annotated[bool, typer.Option(
                    "--authority", help="The authorized body (the regulator): its regulator users act across "
                                        "organizations (trusted lists, sandbox decisions).")] = False) -> None:
    """Register an organization (an operator, or with --authority the regulator)."""
    platform = _open()
    with platform.db.transaction() as s:
        org = auth.create_organization(s, name=name, bin=bin, actor=CLI_ACTOR, is_authority=authority)
        out.print(f"organization {org.id} created" + (" (the authorized body)" if authority else ""))


@orgs_app.command("authority")
@friendly_errors
def orgs_authority(bin: Annotated[str, typer.Argument(help="BIN of the organization.")],
                   revoke: Annotated[bool, typer.Option("--revoke", help="Make it an operator again.")] = False) -> None:
    """Make an organization the authorized body (the regulator), or revoke that. Only the platform's administrator
    can: an operator granting its own staff the regulator role gets nothing beyond its own organization."""
    platform = _open()
    with platform.db.transaction() as s:
        org = auth.find_organization_by_bin(s, bin)
        if org is None:
            raise QorgauError("no organization with this BIN", field="bin")
        auth.set_authority(s, org.id, not revoke, actor=CLI_ACTOR)
        out.print(f"organization {org.id} is {'an operator' if revoke else 'the authorized body'}")


@orgs_app.command("list")
@friendly_errors
def orgs_list() -> None:
    """List organizations."""
    platform = _open()
    table = Table("id", "BIN", "name", "demo", "authority")
    with platform.db.reader() as s:
        for org in auth.list_organizations(s):
            table.add_row(str(org.id), org.bin, org.name, "yes" if org.is_demo else "",
                          "yes" if org.is_authority else "")
    out.print(table)


@users_app.command("create")
@friendly_errors
def users_create(
    org: Annotated[str, typer.Option("--org", help="BIN of the user's organization.")],
    username: Annotated[str, typer.Option(help="Login name.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    role: Annotated[list[str], typer.Option("--role", help=f"Role, repeatable: {', '.join(auth.ROLE_NAMES)}.")],
    language: Annotated[Optional[str], typer.Option(help="kk, ru or en.")] = None,
) -> None:
    """Create a user and print a one-time password (changed at first login)."""
    platform = _open()
    with platform.db.transaction() as s:
        org_id = _org_id(s, org)
        user, password = auth.create_user(s, organization_id=org_id, username=username, display_name=name,
                                          roles=role, actor=CLI_ACTOR, language=language)
    out.print(f"user {user.id} ({user.username}) created; one-time password: [bold]{password}[/bold]")


@users_app.command("list")
@friendly_errors
def users_list(org: Annotated[Optional[str], typer.Option("--org", help="Only this organization (BIN).")] = None) -> None:
    """List users (all organizations, or one)."""
    platform = _open()
    table = Table("id", "org", "username", "roles", "language", "must change password")
    with _reader(platform, org) as s:
        for u in auth.list_users(s):
            table.add_row(str(u.id), str(u.organization_id), u.username, ", ".join(u.roles), u.language or "",
                          "yes" if u.must_change_password else "")
    out.print(table)


@users_app.command("reset-password")
@friendly_errors
def users_reset_password(username: str) -> None:
    """Issue a new one-time password for a user."""
    platform = _open()
    with platform.db.transaction() as s:
        user = auth.find_user(s, username)
        password = auth.reset_password(s, user, actor=CLI_ACTOR)
    out.print(f"new one-time password for {user.username}: [bold]{password}[/bold]")


@users_app.command("unlock")
@friendly_errors
def users_unlock(username: str) -> None:
    """End a user's login lockout and forget their failed attempts (client address locks expire by themselves)."""
    from ..core.throttle import login_throttle_for

    platform = _open()
    throttle = login_throttle_for(platform)
    with platform.db.transaction() as s:
        was_locked = throttle.unlock(s, username, actor=CLI_ACTOR)
    state = "unlocked" if was_locked else "was not locked (its failed logins, if any, are forgotten)"
    out.print(f"{escape(username.strip().lower())}: {state}")


@keys_app.command("create")
@friendly_errors
def keys_create(
    org: Annotated[str, typer.Option("--org", help="BIN of the organization the key acts for.")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'scoring-service'.")],
    role: Annotated[list[str], typer.Option("--role", help="Role, repeatable: admin, dpo, reviewer, regulator.")],
) -> None:
    """Create an API key; the secret is printed once."""
    platform = _open()
    with platform.db.transaction() as s:
        key, secret = auth.create_api_key(s, organization_id=_org_id(s, org), name=name, roles=role, actor=CLI_ACTOR)
    out.print(f"API key {key.id} created. Secret (shown once): [bold]{secret}[/bold]")


@keys_app.command("list")
@friendly_errors
def keys_list(org: Annotated[Optional[str], typer.Option("--org", help="Only this organization (BIN).")] = None) -> None:
    """List API keys (never their secrets)."""
    platform = _open()
    table = Table("id", "org", "name", "prefix", "roles", "created", "revoked")
    with _reader(platform, org) as s:
        for k in auth.list_api_keys(s):
            table.add_row(str(k.id), str(k.organization_id), k.name, k.prefix, ", ".join(k.roles),
                          k.created_at.strftime("%Y-%m-%d %H:%M"),
                          k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "")
    out.print(table)


@keys_app.command("revoke")
@friendly_errors
def keys_revoke(key_id: int) -> None:
    """Revoke an API key at once."""
    platform = _open()
    with platform.db.transaction() as s:
        auth.revoke_api_key(s, key_id, actor=CLI_ACTOR)
    out.print(f"API key {key_id} revoked")


# --- master key --------------------------------------------------------------------------------


@master_app.command("rotate")
@friendly_errors
def master_rotate() -> None:
    """Create a new master key, re-wrap every data key with it, retire the old one. Data is untouched."""
    platform = _open()
    report = rotate_master_key(platform.db, platform.keys)
    with platform.db.transaction() as s:
        audit.record(s, actor=CLI_ACTOR, action="master_key.rotate", object_type="master_key",
                     object_id=report.new_master_key_id, details={"rewrapped": report.rewrapped,
                                                                 "retired": report.retired})
    out.print(f"active master key {report.new_master_key_id}; {report.rewrapped} data keys re-wrapped; "
              f"retired: {', '.join(report.retired) or 'none'}")


@master_app.command("status")
@friendly_errors
def master_status() -> None:
    """Show master key ids (never the keys)."""
    platform = _open()
    for kid in platform.keys.key_ids():
        out.print(f"{kid}{'  (active)' if kid == platform.keys.active_key_id else ''}")


# --- audit -------------------------------------------------------------------------------------


@audit_app.command("verify")
@friendly_errors
def audit_verify() -> None:
    """Rebuild the Merkle tree from every entry and check it against stored nodes and signed heads.

    Exit code 0 when intact, 3 when anything was altered or removed. On success a fresh tree head is
    signed, so later tampering with what was just verified is detectable too.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn

    platform = _open()
    with Progress(SpinnerColumn(), TextColumn("verifying the audit log…"), console=err, transient=True) as p:
        p.add_task("verify")
        report = audit.verify(platform.db, platform.keyring)
    if report.ok:
        with platform.db.transaction() as s:
            head = audit.sign_tree_head(s, platform.keyring)
        out.print(f"[green]intact[/green]: {report.entries} entries, {report.heads_checked} signed tree heads "
                  f"checked; signed head {head.tree_size} root {head.root_hash.hex()}")
        return
    out.print(f"[red]TAMPERED[/red]: {len(report.problems)} problem(s) in {report.entries} entries")
    for problem in report.problems:
        out.print(f"  - {problem}")
    raise typer.Exit(3)


@audit_app.command("proof")
@friendly_errors
def audit_proof(entry_id: int, tree_size: Annotated[Optional[int], typer.Option(help="Prove against this signed tree size.")] = None) -> None:
    """Print an entry's inclusion proof against a signed tree head, and check it."""
    import json

    platform = _open()
    head = audit.signed_head_covering(platform.db, platform.keyring, entry_id)
    if tree_size is not None:
        with platform.db.reader() as s:
            found = audit.tree_head_at(s, tree_size)
        if found is None:
            raise QorgauError("no signed tree head of that size", field="--tree-size")
        head = found
    with platform.db.reader() as s:
        proof = audit.inclusion_proof(s, entry_id, head.tree_size)
        pub = audit.public_key(s, platform.keyring)
    ok = proof.verify() and proof.root_hash == head.root_hash and audit.verify_head_signature(head, pub)
    out.print_json(json.dumps({**proof.to_dict(), "tree_head": head.to_dict(), "verified": ok}))
    if not ok:
        raise typer.Exit(3)


@audit_app.command("head")
@friendly_errors
def audit_head() -> None:
    """Sign (if needed) and print the current tree head."""
    import json

    platform = _open()
    with platform.db.transaction() as s:
        head = audit.sign_tree_head(s, platform.keyring)
    out.print_json(json.dumps(head.to_dict()))


@audit_app.command("log")
@friendly_errors
def audit_log(limit: Annotated[int, typer.Option(help="How many entries, newest first.")] = 20) -> None:
    """Show the newest audit entries."""
    platform = _open()
    table = Table("id", "time (UTC)", "actor", "org", "action", "object")
    with platform.db.reader() as s:
        for e in audit.list_entries(s, limit=limit):
            table.add_row(str(e.id), e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.actor,
                          str(e.organization_id or ""), e.action, f"{e.object_type}:{e.object_id}")
    out.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
