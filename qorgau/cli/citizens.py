"""``qorgau citizens``: verified citizen identities and one-time enrollment codes.

Thin adapter over :mod:`qorgau.consent.citizens`, registered by ``qorgau/cli/main.py``. The IIN is read
from standard input (``--iin -``) or a hidden prompt, never from the command line, where it would end up
in the shell history and in ``ps``. Output shows masked IINs only.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ..consent import citizens as citizens_service
from ..core import auth
from ..core.errors import InvalidInput, NotFound

citizens_app = typer.Typer(
    help="Citizen accounts linked to a verified IIN (the citizen portal); one-time enrollment codes.",
    no_args_is_help=True)

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


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


def _org_id(session: Any, bin_: str) -> int:
    from .main import _org_id as org_id

    return org_id(session, bin_)


def _read_iin(source: Optional[str]) -> str:
    if source is None:
        if not sys.stdin.isatty():
            raise InvalidInput("pass the IIN on standard input with `--iin -`", field="--iin")
        return typer.prompt("IIN (not echoed)", hide_input=True)
    if source != "-":
        raise InvalidInput("never put an IIN on the command line (shell history, ps); use `--iin -` and "
                           "standard input", field="--iin")
    line = sys.stdin.readline(256)
    if not line.strip():
        raise InvalidInput("no IIN on standard input", field="--iin")
    return line.strip()


def _user_id(session: Any, username: str) -> int:
    return auth.find_user(session, username).id


@citizens_app.command("enroll")
@_friendly
def enroll(
    iin: Annotated[Optional[str], typer.Option("--iin", help="`-`: read the IIN from standard input "
                                               "(without the option: a hidden prompt).")] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="Bind the code to this citizen account "
                                                "(username); otherwise any citizen account may redeem it.")] = None,
    valid_hours: Annotated[int, typer.Option("--valid-hours", min=1, max=720,
                                             help="How long the code stays valid.")] = 72,
    org: Annotated[Optional[str], typer.Option("--org", help="BIN of the issuing organization "
                                               "(default: the platform operator).")] = None,
) -> None:
    """Issue a one-time enrollment code for an IIN whose holder you identified (ID document in hand).

    The person redeems it once in the citizen portal (/me/verify); it expires, is stored only as a hash,
    and is blocked after five wrong attempts. The code is printed once.
    """
    value = _read_iin(iin)
    platform = _platform()
    service = citizens_service.citizens_for(platform)
    with platform.db.transaction() as session:
        organization_id = _org_id(session, org) if org else None
        user_id = _user_id(session, user) if user else None
        try:
            issued = service.issue_enrollment(session, value, actor=_actor(), organization_id=organization_id,
                                              valid_for=timedelta(hours=valid_hours), user_id=user_id)
        except InvalidInput as exc:
            # Name the option the user typed (and keep rich from reading "[iin]" as markup).
            raise InvalidInput(exc.message, field="--iin" if exc.field == "iin" else exc.field) from None
    out.print(f"enrollment code (shown once): [bold]{issued.code}[/bold]")
    out.print(f"valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC; selector {issued.selector} "
              "(for `qorgau citizens revoke`)")


@citizens_app.command("status")
@_friendly
def status(username: str) -> None:
    """Show whether a citizen account has a verified identity (masked IIN, method, time)."""
    platform = _platform()
    service = citizens_service.citizens_for(platform)
    with platform.db.reader() as session:
        summary = service.identity(session, _user_id(session, username))
    if summary is None:
        out.print("no verified identity")
        raise typer.Exit(1)
    out.print(f"verified: IIN {summary.masked_iin}, method {summary.method}, "
              f"at {summary.verified_at:%Y-%m-%d %H:%M} UTC")


@citizens_app.command("unlink")
@_friendly
def unlink(username: str) -> None:
    """Remove a citizen account's verified identity (e.g. the person lost the account and enrolls anew)."""
    platform = _platform()
    service = citizens_service.citizens_for(platform)
    with platform.db.transaction() as session:
        removed = service.unlink(session, _user_id(session, username), actor=_actor())
    if not removed:
        raise NotFound("this account has no verified identity", field="username")
    out.print("identity unlinked")


@citizens_app.command("codes")
@_friendly
def codes(
    org: Annotated[Optional[str], typer.Option("--org", help="Only codes this organization issued (BIN).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
) -> None:
    """List enrollment codes (selector, status, expiry; never the code or the IIN)."""
    platform = _platform()
    service = citizens_service.citizens_for(platform)
    table = Table("id", "selector", "status", "issued by", "org", "expires (UTC)", "attempts")
    with platform.db.reader() as session:
        organization_id = _org_id(session, org) if org else None
        for row in service.list_enrollments(session, organization_id=organization_id, limit=limit):
            table.add_row(str(row.id), row.selector, row.status(), row.issued_by,
                          str(row.issuer_organization_id or ""), f"{row.expires_at:%Y-%m-%d %H:%M}",
                          str(row.attempts))
    out.print(table)


@citizens_app.command("revoke")
@_friendly
def revoke(selector: Annotated[str, typer.Argument(help="The code's first eight characters.")]) -> None:
    """Revoke a pending enrollment code."""
    platform = _platform()
    service = citizens_service.citizens_for(platform)
    with platform.db.transaction() as session:
        row = service.revoke_enrollment(session, selector, actor=_actor())
        state = row.status()
    out.print(f"code {row.selector}: {state}")


@citizens_app.command("purge")
@_friendly
def purge() -> None:
    """Erase the sealed IIN of every expired code (L-PD-RETENTION); run it daily."""
    platform = _platform()
    service = citizens_service.citizens_for(platform)
    with platform.db.transaction() as session:
        count = service.purge_enrollments(session, actor=_actor())
    out.print(f"{count} expired code(s) purged")
