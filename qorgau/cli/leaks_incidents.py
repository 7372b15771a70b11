"""``qorgau leaks incidents`` and ``qorgau leaks regulator`` — incident reports and the authorized body's workflow
(issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER). Thin adapters over :mod:`qorgau.leaks.incidents`.

An incident is named by its reference (``KZ-LEAK-2026-000042``) or its id. A report file is YAML or JSON with the
fields of docs/leaks-incidents.md; times in ISO 8601 with an offset (``2026-11-20T09:30:00+05:00``). The
operator's commands act for ``--org`` (its BIN); the regulator's for the authorized body's BIN (``qorgau orgs
create --authority``) and are refused for any other organization.

Exit codes: 0 done, 2 bad input (the message names the field, or the file and line), 1 setup problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .consent import _actor, _friendly, _json, _org, _platform
from .leaks import leaks_app

out = Console()
incidents_app = typer.Typer(help="Incident reports: file, amend, answer the authorized body (L-PD-BREACH).",
                            no_args_is_help=True)
regulator_app = typer.Typer(help="The authorized body: verify, publish, notes, information requests, takedowns.",
                            no_args_is_help=True)
leaks_app.add_typer(incidents_app, name="incidents")
leaks_app.add_typer(regulator_app, name="regulator")

Org = Annotated[str, typer.Option("--org", help="The organization's BIN.")]
AuthorityOrg = Annotated[str, typer.Option("--org", help="The authorized body's BIN.")]
Ref = Annotated[str, typer.Argument(help="The incident's reference (KZ-LEAK-2026-000042) or id.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON output.")]


def _service(platform: Any) -> Any:
    from ..leaks.incidents import incidents_for

    return incidents_for(platform)


def _read(path: Path, option: str) -> Any:
    """A YAML or JSON file (JSON is YAML); errors name the file and line, never its contents."""
    import yaml

    from ..core.errors import InvalidInput

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {type(exc).__name__}", field=option) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InvalidInput(f"{where}: not valid YAML or JSON", field=option) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a mapping of fields", field=option)
    return data


def _authority(platform: Any, bin: str) -> int:
    from ..core import auth

    org = _org(platform, bin)
    with platform.db.reader() as s:
        auth.require_authority(s, org)
    return org


def _print_incident(view: Any) -> None:
    d = view.to_dict()
    out.print(f"[bold]{escape(d['reference'])}[/bold]  {escape(d['title'])}")
    out.print(f"operator {escape(d['operator_name'])} ({d['operator_bin']}) · status {d['status']}"
              + (" · published" if d["published"] else "") + (" · LATE" if d["late"] else "")
              + (" · information requested" if d["info_requested"] else ""))
    out.print(f"nature {d['nature']} · sector {d['sector']} · data classes {', '.join(d['data_classes'])}")
    out.print(f"discovered {d['discovered_at']} · deadline {d['deadline_at']} · filed {d['filed_at']}")
    out.print(f"people affected {d['people_affected'] if d['people_affected'] is not None else '—'} · identifiers "
              f"committed {d['identifiers_committed']} · addenda {len(d['addenda'])}")
    for event in d["events"]:
        text = f": {escape(event['text'])}" if event.get("text") else ""
        out.print(f"  {event['at']}  {event['kind']}{' (authorized body)' if event['by_authority'] else ''}{text}")
    for t in d["takedowns"]:
        out.print(f"  takedown {t['id']}: {t['status']} · {escape(t['addressee'])} · {escape(t['location'])}")


def _table(rows: list[dict[str, Any]], *, operator: bool) -> None:
    table = Table("id", "reference", *(("operator",) if operator else ()), "title", "status", "late", "published",
                  "discovered", "deadline")
    for r in rows:
        table.add_row(str(r["id"]), r["reference"], *((escape(r["operator_name"]),) if operator else ()),
                      escape(r["title"]), r["status"], "yes" if r["late"] else "", "yes" if r["published"] else "",
                      r["discovered_at"], r["deadline_at"])
    out.print(table)


def _done(view: Any, as_json: bool, message: str) -> None:
    if as_json:
        _json(view.to_dict() if hasattr(view, "to_dict") else view)
    else:
        out.print(message)


# --- the operator ------------------------------------------------------------------------------------------------


@incidents_app.command("file")
@_friendly
def file_report(org: Org, source: Annotated[Path, typer.Option("--from", help="The report (YAML or JSON).")],
                as_json: AsJson = False) -> None:
    """File an initial incident report (within 1 working day of discovery; late reports need late_reason)."""
    platform = _platform()
    data = _read(source, "--from")
    with platform.db.transaction(_org(platform, org)) as s:
        view = _service(platform).file_report(s, data, actor=_actor())
    _done(view, as_json, f"incident {view.reference} filed (id {view.id}); deadline {view.values['deadline_at']}"
                         + (" — LATE" if view.values["late"] else ""))


@incidents_app.command("list")
@_friendly
def list_incidents(org: Org, status: Annotated[Optional[str], typer.Option(help="Only this status.")] = None,
                   as_json: AsJson = False) -> None:
    """The organization's incidents, newest first."""
    platform = _platform()
    with platform.db.reader(_org(platform, org)) as s:
        rows = _service(platform).incidents(s, status=status)
    _json(rows) if as_json else _table(rows, operator=False)


@incidents_app.command("show")
@_friendly
def show(ref: Ref, org: Org, as_json: AsJson = False) -> None:
    """One incident: the current report (addenda merged), history and takedown requests."""
    platform = _platform()
    service = _service(platform)
    with platform.db.reader(_org(platform, org)) as s:
        view = service.incident(s, service.find(s, ref).id)
    _json(view.to_dict()) if as_json else _print_incident(view)


@incidents_app.command("addendum")
@_friendly
def addendum(ref: Ref, org: Org, source: Annotated[Path, typer.Option("--from", help="The changed fields.")],
             as_json: AsJson = False) -> None:
    """File an addendum: the fields that changed (discovered_at is fixed by the initial filing)."""
    platform = _platform()
    data = _read(source, "--from")
    service = _service(platform)
    with platform.db.transaction(_org(platform, org)) as s:
        view = service.file_addendum(s, service.find(s, ref).id, data, actor=_actor())
    _done(view, as_json, f"addendum {view.addenda[-1]['reference']} filed: {', '.join(view.addenda[-1]['fields'])}")


@incidents_app.command("respond")
@_friendly
def respond(ref: Ref, org: Org, text: Annotated[str, typer.Option("--text", help="The answer.")],
            as_json: AsJson = False) -> None:
    """Answer the authorized body's request for more information."""
    platform = _platform()
    service = _service(platform)
    with platform.db.transaction(_org(platform, org)) as s:
        view = service.respond(s, service.find(s, ref).id, text, actor=_actor())
    _done(view, as_json, f"answer sent for {view.reference}")


# --- the regulator -----------------------------------------------------------------------------------------------


def _flag(value: Optional[str], option: str) -> bool | None:
    from ..core.errors import InvalidInput

    if value is None:
        return None
    if value not in ("yes", "no"):
        raise InvalidInput("yes or no", field=option)
    return value == "yes"


@regulator_app.command("list")
@_friendly
def regulator_list(org: AuthorityOrg, status: Annotated[Optional[str], typer.Option(help="Only this status.")] = None,
                   late: Annotated[Optional[str], typer.Option(help="yes or no.")] = None,
                   published: Annotated[Optional[str], typer.Option(help="yes or no.")] = None,
                   as_json: AsJson = False) -> None:
    """Every operator's incidents (the queue), newest first."""
    platform = _platform()
    authority = _authority(platform, org)
    with platform.db.reader() as s:
        rows = _service(platform).regulator_incidents(s, authority=authority, status=status,
                                                      late=_flag(late, "--late"),
                                                      published=_flag(published, "--published"))
    _json(rows) if as_json else _table(rows, operator=True)


def _regulate(org: str, ref: str, method: str, *args: Any, **kwargs: Any) -> Any:
    platform = _platform()
    authority = _authority(platform, org)
    service = _service(platform)
    with platform.db.transaction() as s:
        incident_id = service.find(s, ref).id
        return getattr(service, method)(s, incident_id, *args, authority=authority, actor=_actor(), **kwargs)


@regulator_app.command("show")
@_friendly
def regulator_show(ref: Ref, org: AuthorityOrg, as_json: AsJson = False) -> None:
    """An incident with every note."""
    platform = _platform()
    authority = _authority(platform, org)
    service = _service(platform)
    with platform.db.reader() as s:
        view = service.regulator_incident(s, service.find(s, ref).id, authority=authority)
    _json(view.to_dict()) if as_json else _print_incident(view)


@regulator_app.command("status")
@_friendly
def status(ref: Ref, new_status: Annotated[str, typer.Argument(help="verified, disputed or fabricated.")],
           org: AuthorityOrg, note: Annotated[str, typer.Option("--note", help="Why (the operator sees it).")],
           as_json: AsJson = False) -> None:
    """Change the status: received → verified/disputed/fabricated, disputed → verified/fabricated, verified →
    disputed."""
    view = _regulate(org, ref, "set_status", new_status, note=note)
    _done(view, as_json, f"{view.reference} is {view.status}")


@regulator_app.command("publish")
@_friendly
def publish(ref: Ref, org: AuthorityOrg,
            unpublish: Annotated[bool, typer.Option("--unpublish", help="Take the incident off publication.")] = False,
            advice_file: Annotated[Optional[Path], typer.Option(
                "--advice-file", help="YAML/JSON with the advice to citizens: kk, ru, en.")] = None,
            note: Annotated[Optional[str], typer.Option("--note", help="With --unpublish: why.")] = None,
            as_json: AsJson = False) -> None:
    """Publish a verified incident with advice to citizens in kk, ru and en (or --unpublish)."""
    from ..core.errors import InvalidInput

    if unpublish:
        view = _regulate(org, ref, "unpublish", note=note)
        _done(view, as_json, f"{view.reference} unpublished")
        return
    if advice_file is None:
        raise InvalidInput("publishing needs the advice to citizens in kk, ru and en", field="--advice-file")
    view = _regulate(org, ref, "publish", advice=_read(advice_file, "--advice-file"))
    _done(view, as_json, f"{view.reference} published")


@regulator_app.command("note")
@_friendly
def note(ref: Ref, org: AuthorityOrg, text: Annotated[str, typer.Option("--text", help="The note.")],
         visible: Annotated[bool, typer.Option("--visible-to-operator", help="Show it to the operator.")] = False,
         as_json: AsJson = False) -> None:
    """A note on the incident (hidden from the operator unless --visible-to-operator)."""
    view = _regulate(org, ref, "add_note", text, visible_to_operator=visible)
    _done(view, as_json, f"note added to {view.reference}")


@regulator_app.command("request-info")
@_friendly
def request_info(ref: Ref, org: AuthorityOrg, text: Annotated[str, typer.Option("--text", help="The question.")],
                 as_json: AsJson = False) -> None:
    """Ask the operator for more information."""
    view = _regulate(org, ref, "request_info", text)
    _done(view, as_json, f"information requested on {view.reference}")


@regulator_app.command("takedown")
@_friendly
def takedown(ref: Ref, org: AuthorityOrg,
             location: Annotated[str, typer.Option("--location", help="Where the data were published.")],
             addressee: Annotated[str, typer.Option("--addressee", help="Who must remove them.")],
             note: Annotated[Optional[str], typer.Option("--note")] = None, as_json: AsJson = False) -> None:
    """Request that data the leak made public be removed (DC Art.17 p.7)."""
    result = _regulate(org, ref, "request_takedown", location=location, addressee=addressee, note=note)
    _done(result, as_json, f"takedown {result['id']} requested")


@regulator_app.command("takedown-resolve")
@_friendly
def takedown_resolve(ref: Ref, takedown_id: Annotated[int, typer.Argument(help="The takedown request's id.")],
                     outcome: Annotated[str, typer.Argument(help="removed or refused.")], org: AuthorityOrg,
                     note: Annotated[Optional[str], typer.Option("--note", help="Required for refused.")] = None,
                     as_json: AsJson = False) -> None:
    """Record a takedown's outcome."""
    result = _regulate(org, ref, "resolve_takedown", takedown_id, outcome, note=note)
    _done(result, as_json, f"takedown {result['id']} {result['status']}")
