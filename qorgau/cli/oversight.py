"""``qorgau ai-systems``, ``qorgau decisions`` and ``qorgau decision-types``: AI decisions about people held for
human approval (L-PD-AUTO, L-AI-DECISION). Thin adapters over :mod:`qorgau.oversight.service`.

A review is a person's act: ``decisions review`` names the reviewer (``--reviewer USERNAME``, a user of the
organization with role reviewer, dpo or admin), and ``decisions show --reviewer USERNAME`` records that they
opened the decision (the start of the time they spent on it). Outcomes are given as JSON (``--outcome 500000``,
``--outcome '"decline"'``; a bare word is taken as a string).

Exit codes: 0 done, 2 bad input (the message names the field), 1 setup problems.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .consent import _actor, _friendly, _json, _org, _platform

ai_systems_app = typer.Typer(help="AI systems whose decisions about people are overseen (declared risk class "
                                  "and autonomy, webhook).", no_args_is_help=True)
decisions_app = typer.Typer(help="AI decisions about people: the review queue, human review, deadlines, "
                                 "reviewer statistics.", no_args_is_help=True)
decision_types_app = typer.Typer(help="Decision types and your policy for each (review, four-eyes, deadlines).",
                                 no_args_is_help=True)

out = Console()
err = Console(stderr=True)
Org = Annotated[str, typer.Option("--org", help="The organization's BIN.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON output.")]


def _service(platform: Any) -> Any:
    from ..oversight.service import oversight_for

    return oversight_for(platform)


def _outcome(value: str | None, option: str = "--outcome") -> Any:
    """JSON if it parses (500000, "decline", {"limit": 1}), else the bare text as a string."""
    from ..core.errors import InvalidInput

    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        if value.strip()[:1] in ("{", "["):
            raise InvalidInput("not valid JSON", field=option) from None
        return value
    if isinstance(parsed, float) and parsed != parsed or parsed in (float("inf"), float("-inf")):
        raise InvalidInput("numbers must be finite", field=option)
    return parsed


def _reviewer(session: Any, username: str) -> Any:
    from ..core import auth

    return auth.find_user(session, username)


def _short(value: Any, width: int = 30) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return escape(text if len(text) <= width else text[: width - 1] + "…")


# --- AI systems ------------------------------------------------------------------------------------------------


@ai_systems_app.command("register")
@_friendly
def systems_register(
    org: Org,
    code: Annotated[str, typer.Option(help="Your stable handle for it (scoring-v2).")],
    name: Annotated[str, typer.Option(help="Its name.")],
    risk_class: Annotated[str, typer.Option(help="Declared risk class: minimal, medium or high (L-AI-RISK).")],
    autonomy: Annotated[str, typer.Option(help="Declared autonomy: low, medium or high.")],
    webhook_url: Annotated[Optional[str], typer.Option(help="Where decided outcomes are POSTed.")] = None,
    description: Annotated[Optional[str], typer.Option(help="What it does (no personal data).")] = None,
) -> None:
    """Register an AI system; prints its webhook signing secret once."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        view, secret = _service(platform).register_system(
            s, code=code, name=name, risk_class=risk_class, autonomy=autonomy, webhook_url=webhook_url,
            description=description, actor=_actor())
    out.print(f"AI system {escape(view.code)} registered (id {view.id}, risk {view.risk_class}, "
              f"autonomy {view.autonomy})")
    if secret:
        print(f"webhook signing secret (shown once): {secret}")


@ai_systems_app.command("list")
@_friendly
def systems_list(org: Org, as_json: AsJson = False) -> None:
    """List an organization's AI systems."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.reader(org_id) as s:
        systems = _service(platform).list_systems(s)
    if as_json:
        _json([v.to_dict() for v in systems])
        return
    table = Table(title="AI systems")
    for col in ("code", "name", "risk class", "autonomy", "classified by", "status", "webhook"):
        table.add_column(col)
    for v in systems:
        table.add_row(escape(v.code), escape(v.name), v.risk_class, v.autonomy, v.classified_by, v.status,
                      escape(v.webhook_url or ""))
    out.print(table)


@ai_systems_app.command("rotate-secret")
@_friendly
def systems_rotate_secret(code: Annotated[str, typer.Argument(help="The AI system's code.")], org: Org) -> None:
    """A new webhook signing secret (printed once; the old one stops signing)."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        secret = _service(platform).rotate_system_secret(s, code, actor=_actor())
    print(f"webhook signing secret (shown once): {secret}")


# --- decisions ---------------------------------------------------------------------------------------------------


@decisions_app.command("list")
@_friendly
def decisions_list(
    org: Org,
    every: Annotated[bool, typer.Option("--all", help="Every decision, newest first (default: the open queue, "
                                                      "earliest deadline first).")] = False,
    level: Annotated[Optional[str], typer.Option(help="Queue level: reviewer or senior.")] = None,
    status: Annotated[Optional[str], typer.Option(help="With --all: only this status.")] = None,
    decision_type: Annotated[Optional[str], typer.Option("--type", help="Only this decision type.")] = None,
    system: Annotated[Optional[str], typer.Option(help="Only this AI system (code).")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Queue: past the deadline only.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[Optional[str], typer.Option(help="The next-page cursor a previous list printed.")] = None,
    as_json: AsJson = False,
) -> None:
    """The review queue of an organization (or every decision with --all)."""
    platform = _platform()
    org_id = _org(platform, org)
    service = _service(platform)
    with platform.db.reader(org_id) as s:
        if every:
            page = service.list_decisions(s, status=status, decision_type=decision_type, system=system, limit=limit,
                                          cursor=cursor)
        else:
            page = service.queue(s, level=level, decision_type=decision_type, system=system, overdue_only=overdue,
                                 limit=limit, cursor=cursor, with_total=True)
    if as_json:
        _json({"items": [d.to_dict() for d in page.items], "next_cursor": page.next_cursor, "total": page.total})
        return
    title = "Decisions" if every else "Review queue" + (f" ({page.total} open)" if page.total is not None else "")
    table = Table(title=title)
    for col in ("id", "type", "system", "subject", "proposed", "status", "level", "deadline", "version"):
        table.add_column(col)
    for d in page.items:
        deadline = f"{d.deadline_at:%Y-%m-%d %H:%M}" if d.deadline_at else ""
        table.add_row(str(d.id), d.decision_type, escape(d.system_code), d.subject_pseudonym or "",
                      _short(d.proposed_outcome), d.status, d.level,
                      f"[red]{deadline} overdue[/red]" if d.overdue else deadline, str(d.version))
    out.print(table)
    if page.next_cursor:
        out.print(f"next page: --cursor {escape(page.next_cursor)}")


@decisions_app.command("show")
@_friendly
def decisions_show(
    decision_id: Annotated[int, typer.Argument(help="The decision's id.")], org: Org,
    reviewer: Annotated[Optional[str], typer.Option(help="Record that this reviewer (username) opened it.")] = None,
    as_json: AsJson = False,
) -> None:
    """One decision with its key factors and reviews."""
    platform = _platform()
    org_id = _org(platform, org)
    service = _service(platform)
    if reviewer is not None:
        with platform.db.transaction(org_id) as s:
            view = service.open(s, decision_id, user=_reviewer(s, reviewer))
    with platform.db.reader(org_id) as s:
        view = service.get(s, decision_id)
        reviews = service.reviews(s, decision_id)
    if as_json:
        _json({**view.to_dict(), "reviews": [r.to_dict() for r in reviews]})
        return
    out.print(f"[bold]decision {view.id}[/bold] — {view.decision_type} by {escape(view.system_code)} "
              f"(risk {view.risk_class}, autonomy {view.autonomy}, model {escape(view.model_version)})")
    out.print(f"subject {view.subject_pseudonym or '—'}; legal effect: {'yes' if view.legal_effect else 'no'}")
    out.print(f"status [bold]{view.status}[/bold] ({view.path}, level {view.level}, version {view.version}); "
              f"effective: {'yes' if view.effective else 'no'}" + (f"; reason {view.reason}" if view.reason else ""))
    out.print(f"proposed {_short(view.proposed_outcome, 80)}"
              + (f"; confidence {view.confidence:.2f}" if view.confidence is not None else "")
              + (f"; final {_short(view.final_outcome, 80)}" if view.final_outcome is not None else ""))
    if view.deadline_at:
        out.print(f"deadline {view.deadline_at:%Y-%m-%d %H:%M} UTC" + (" [red]overdue[/red]" if view.overdue else ""))
    if view.four_eyes:
        out.print(f"four eyes: {view.approvals}/{view.approvals_needed} approvals")
    table = Table(title="Key factors")
    for col in ("factor", "weight", "value"):
        table.add_column(col)
    for f in view.factors:
        table.add_row(escape(str(f.get("label") or f.get("code"))), f"{float(f.get('weight', 0)):+.2f}",
                      _short(f.get("value"), 40) if f.get("value") is not None else "")
    out.print(table)
    if reviews:
        table = Table(title="Reviews")
        for col in ("at", "actor", "action", "level", "seconds", "rationale"):
            table.add_column(col)
        for r in reviews:
            table.add_row(f"{r.decided_at:%Y-%m-%d %H:%M:%S}", r.actor, r.action, r.level,
                          f"{r.seconds_spent:.0f}" if r.seconds_spent is not None else "", _short(r.rationale or "", 60))
        out.print(table)


@decisions_app.command("review")
@_friendly
def decisions_review(
    decision_id: Annotated[int, typer.Argument(help="The decision's id.")], org: Org,
    reviewer: Annotated[str, typer.Option(help="Who decides: a username with role reviewer, dpo or admin.")],
    action: Annotated[str, typer.Option(help="approve, amend, reject or escalate.")],
    version: Annotated[Optional[int], typer.Option(help="The version you reviewed (see show); the review is "
                                                        "refused if it changed. Default: the current one.")] = None,
    outcome: Annotated[Optional[str], typer.Option(help="The amended outcome, as JSON (action amend).")] = None,
    rationale: Annotated[Optional[str], typer.Option(help="Why (required to amend or reject).")] = None,
) -> None:
    """Approve, amend, reject or escalate a decision as a named reviewer."""
    platform = _platform()
    org_id = _org(platform, org)
    service = _service(platform)
    with platform.db.transaction(org_id) as s:
        user = _reviewer(s, reviewer)
        expected = version if version is not None else service.get(s, decision_id).version
        view = service.review(s, decision_id, user=user, action=action, expected_version=expected,
                              outcome=_outcome(outcome), rationale=rationale)
    out.print(f"decision {view.id}: [bold]{view.status}[/bold]" + (" (effective)" if view.effective else "")
              + (f", {view.approvals}/{view.approvals_needed} approvals" if view.four_eyes and not view.decided_at
                 else ""))


@decisions_app.command("sweep")
@_friendly
def decisions_sweep(org: Annotated[Optional[str], typer.Option("--org", help="One organization (default: all).")] = None
                    ) -> None:
    """Apply review deadlines now: escalate or reject what is overdue (never approve)."""
    from ..core import auth

    platform = _platform()
    if org is not None:
        orgs = [_org(platform, org)]
    else:
        with platform.db.reader() as s:
            orgs = [o.id for o in auth.list_organizations(s)]
    totals: dict[str, int] = {}
    for org_id in orgs:
        with platform.db.transaction(org_id) as s:
            for key, n in _service(platform).sweep_deadlines(s).items():
                totals[key] = totals.get(key, 0) + n
    out.print(", ".join(f"{k}: {v}" for k, v in sorted(totals.items())) or "nothing was due")


@decisions_app.command("stats")
@_friendly
def decisions_stats(org: Org, days: Annotated[int, typer.Option(min=1, max=3660, help="Look back this many days.")] = 90,
                    as_json: AsJson = False) -> None:
    """Per reviewer and decision type: reviews, time spent, approval/override rates; flags rubber-stamping."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.reader(org_id) as s:
        stats = _service(platform).reviewer_stats(s, days=days)
    if as_json:
        _json([r.to_dict() for r in stats])
        return
    table = Table(title=f"Reviewers, last {days} days")
    for col in ("reviewer", "type", "reviewed", "approved", "amended", "rejected", "median s", "approval",
                "override", "flag"):
        table.add_column(col)
    for r in stats:
        table.add_row(r.actor, r.decision_type, str(r.reviewed), str(r.approvals), str(r.amendments),
                      str(r.rejections), f"{r.median_seconds:.0f}" if r.median_seconds is not None else "",
                      f"{r.approval_rate:.0%}", f"{r.override_rate:.0%}",
                      "[red]rubber stamp?[/red]" if r.rubber_stamp else "")
    out.print(table)


# --- decision types ------------------------------------------------------------------------------------------------


@decision_types_app.command("list")
@_friendly
def types_list(org: Org, lang: Annotated[str, typer.Option(help="kk, ru or en.")] = "en", as_json: AsJson = False) -> None:
    """Decision types: the platform's defaults merged with the organization's policies."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.reader(org_id) as s:
        types = _service(platform).decision_types(s)
    if as_json:
        _json([t.to_dict() for t in types])
        return
    table = Table(title="Decision types")
    for col in ("code", "name", "legal effect", "purpose", "review", "four eyes", "hours", "on timeout", "source"):
        table.add_column(col)
    for t in types:
        table.add_row(t.code, escape(t.names.get(lang) or t.names.get("en") or ""), "yes" if t.legal_effect else "no",
                      t.purpose, t.review, "yes" if t.four_eyes else "", str(t.review_hours), t.on_timeout, t.source)
    out.print(table)


@decision_types_app.command("set")
@_friendly
def types_set(
    code: Annotated[str, typer.Argument(help="The decision type's code (an existing one, or a new one of yours).")],
    org: Org,
    review: Annotated[Optional[str], typer.Option(help="always or by_risk.")] = None,
    four_eyes: Annotated[Optional[bool], typer.Option("--four-eyes/--no-four-eyes", help="Two different reviewers.")] = None,
    rationale_on_approve: Annotated[Optional[bool], typer.Option("--rationale-on-approve/--no-rationale-on-approve")] = None,
    review_hours: Annotated[Optional[int], typer.Option(min=1, help="Hours until the review deadline.")] = None,
    on_timeout: Annotated[Optional[str], typer.Option(help="escalate or reject (never approve).")] = None,
    senior_hours: Annotated[Optional[int], typer.Option(min=1, help="Hours a senior reviewer gets after escalation.")] = None,
    legal_effect: Annotated[Optional[bool], typer.Option("--legal-effect/--no-legal-effect")] = None,
    purpose: Annotated[Optional[str], typer.Option(help="The consent purpose checked first.")] = None,
    schema: Annotated[Optional[str], typer.Option("--schema", help="The outcome schema, as JSON.")] = None,
    name_kk: Annotated[Optional[str], typer.Option("--name-kk")] = None,
    name_ru: Annotated[Optional[str], typer.Option("--name-ru")] = None,
    name_en: Annotated[Optional[str], typer.Option("--name-en")] = None,
) -> None:
    """Set the organization's policy for a decision type (only the options given change)."""
    from ..core.errors import InvalidInput

    fields: dict[str, Any] = {k: v for k, v in dict(
        review=review, four_eyes=four_eyes, rationale_on_approve=rationale_on_approve, review_hours=review_hours,
        on_timeout=on_timeout, senior_hours=senior_hours, legal_effect=legal_effect, purpose=purpose).items()
        if v is not None}
    if schema is not None:
        parsed = _outcome(schema, "--schema")
        if not isinstance(parsed, dict):
            raise InvalidInput("the outcome schema is a JSON object", field="--schema")
        fields["outcome_schema"] = parsed
    names = {k: v for k, v in (("kk", name_kk), ("ru", name_ru), ("en", name_en)) if v is not None}
    if names:
        fields["names"] = names
    if not fields:
        raise InvalidInput("nothing to change: give at least one option", field="code")
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        info = _service(platform).set_decision_type(s, code, actor=_actor(), **fields)
    out.print(f"decision type {info.code}: review {info.review}, four eyes {'on' if info.four_eyes else 'off'}, "
              f"{info.review_hours} h, on timeout {info.on_timeout}")
