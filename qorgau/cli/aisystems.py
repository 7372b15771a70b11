"""``qorgau ai-systems`` — the AI systems register (issue 7): the questionnaire, registering a system with its
answers, classification by the rule packs (stored, or a preview under the law as of a date), history with diffs,
obligations, audits and trusted-list requests (L-AI-TRUSTED), sandbox applications (L-AI-SANDBOX [plan]), the
maturity index (L-AI-MATURITY [plan]) and the public register. Thin adapters over
:mod:`qorgau.aisystems.register` and :mod:`qorgau.aisystems.governance`.

The commands join ``ai_systems_app`` of :mod:`qorgau.cli.oversight` (list, rotate-secret). ``register`` takes
the questionnaire (``--facts FILE.yaml``); with ``--risk-class`` and ``--autonomy`` instead it registers a
system with a *declared* class, as before the register existed.

A system is named by its code (``scoring-v2``) or its id. The facts file is YAML, either flat
(``functions.emotion_recognition: true``, as ``qorgau ai-systems questionnaire -o`` writes it) or nested
(``functions: {emotion_recognition: true}``). A null answer is unanswered: ``register`` leaves it out,
``update-questionnaire`` clears it (facts the file does not name keep their stored answers).

Exit codes: 0 done, 2 bad input (the message names the field, file or line), 1 setup problems.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .consent import _actor, _friendly, _json, _org, _platform
from .oversight import ai_systems_app, systems_register as _declared_register

out = Console()
err = Console(stderr=True)
Org = Annotated[str, typer.Option("--org", help="The organization's BIN.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON output.")]
SystemArg = Annotated[str, typer.Argument(help="The AI system's code (or id).")]
Lang = Annotated[str, typer.Option("--lang", help="kk, ru or en.")]


def _register(platform: Any) -> Any:
    from ..aisystems.register import register_for

    return register_for(platform)


def _governance(platform: Any) -> Any:
    from ..aisystems.governance import governance_for

    return governance_for(platform)


def _lang(value: str) -> str:
    from ..core.errors import InvalidInput

    if value not in ("kk", "ru", "en"):
        raise InvalidInput("choose kk, ru or en", field="--lang")
    return value


def _date(value: str | None, option: str) -> date | None:
    from ..core.errors import InvalidInput

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("not a date (YYYY-MM-DD)", field=option) from None


def _system_id(platform: Any, session: Any, system: str) -> int:
    """The id of the organization's system with this code (or, all digits and no such code, this id)."""
    from ..core.errors import NotFound

    try:
        return _register(platform).system_by_code(session, system).id
    except NotFound:
        if system.isdigit():
            return int(system)
        raise


def _text(value: Any, lang: str = "en") -> str:
    """A {kk, ru, en} mapping in one language (or the value as it is)."""
    if isinstance(value, dict):
        return str(value.get(lang) or value.get("en") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def _read_facts(path: Path) -> dict[str, Any]:
    """The questionnaire's answers from YAML, as nested facts; errors name the file and line."""
    import yaml

    from ..core.errors import InvalidInput

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {type(exc).__name__}", field="--facts") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InvalidInput(f"{where}: not valid YAML", field="--facts") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a mapping of fact paths to answers", field="--facts")
    facts: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and "." in key:  # flat: functions.emotion_recognition: true
            namespace, _, name = key.partition(".")
            facts.setdefault(namespace, {})[name] = value
        elif isinstance(value, dict):            # nested: functions: {emotion_recognition: true}
            facts.setdefault(str(key), {}).update(value)
        else:
            raise InvalidInput(f"{path}: '{key}' is not a fact path (namespace.name)", field="--facts")
    return _plain(facts)


def _plain(value: Any) -> Any:
    """YAML dates (audit.date: 2026-01-20) travel as ISO text, the way the API receives them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _template(groups: list[Any], lang: str) -> str:
    """A YAML questionnaire to fill in: one flat key per fact, its question and allowed values as comments."""
    lines = ["# qorgau — AI system questionnaire. Answer each fact; leave null what you do not know yet",
             "# (classification lists the facts still missing to decide). Then:",
             "#   qorgau ai-systems register --org BIN --code CODE --name NAME --facts THIS_FILE.yaml", ""]
    for group in groups:
        lines.append(f"# === {group.title}")
        for fact in group.facts:
            lines.append(f"# {fact.question}" + (" (required)" if fact.required else ""))
            if fact.help:
                lines.append(f"#   {fact.help}")
            if fact.values:
                kind = "one or more of" if fact.type == "enum_list" else "one of"
                lines.append(f"#   {kind}: {', '.join(fact.values)}")
            elif fact.type != "string":
                lines.append(f"#   {fact.type}" + (" (YYYY-MM-DD)" if fact.type == "date" else ""))
            lines.append(f"{fact.path}: null")
        lines.append("")
    return "\n".join(lines)


# --- the questionnaire and the systems -----------------------------------------------------------------------


@ai_systems_app.command("questionnaire")
@_friendly
def questionnaire(
    lang: Lang = "en",
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write a YAML template to fill in.")] = None,
    as_json: AsJson = False,
) -> None:
    """The register's questionnaire: print the questions, or write a YAML template with -o."""
    lang = _lang(lang)
    platform = _platform()
    groups = _register(platform).questionnaire(lang)
    if output is not None:
        output.write_text(_template(groups, lang), encoding="utf-8")
        out.print(f"questionnaire template written to {escape(str(output))} "
                  f"({sum(len(g.facts) for g in groups)} facts)")
        return
    if as_json:
        _json([g.to_dict() for g in groups])
        return
    for group in groups:
        table = Table(title=group.title, title_justify="left")
        for col in ("fact", "type", "question", "values"):
            table.add_column(col)
        for fact in group.facts:
            table.add_row(escape(fact.path) + (" *" if fact.required else ""), fact.type, escape(fact.question),
                          escape(", ".join(fact.values)))
        out.print(table)
    out.print("[dim]* required to decide the classification[/dim]")


# ``register`` replaces oversight's command of the same name: with --facts it registers the questionnaire,
# with --risk-class/--autonomy it keeps registering a declared class (oversight's original behaviour).
ai_systems_app.registered_commands[:] = [c for c in ai_systems_app.registered_commands if c.name != "register"]


@ai_systems_app.command("register")
@_friendly
def register(
    org: Org,
    code: Annotated[str, typer.Option(help="Your stable handle for it (scoring-v2).")],
    name: Annotated[str, typer.Option(help="Its name.")],
    facts: Annotated[Optional[Path], typer.Option(help="The questionnaire's answers (YAML; see `questionnaire -o`).")]
    = None,
    public: Annotated[Optional[bool], typer.Option("--public/--private", help="Show it in the public register "
                                                   "(default: state systems yes, others no).")] = None,
    description: Annotated[Optional[str], typer.Option(help="What it does (no personal data).")] = None,
    webhook_url: Annotated[Optional[str], typer.Option(help="Where decided outcomes are POSTed.")] = None,
    risk_class: Annotated[Optional[str], typer.Option(help="Without --facts: a declared risk class (minimal, medium, "
                                                           "high).")] = None,
    autonomy: Annotated[Optional[str], typer.Option(help="Without --facts: a declared autonomy (low, medium, "
                                                         "high).")] = None,
    as_json: AsJson = False,
) -> None:
    """Register an AI system with its questionnaire (classified at once); prints its webhook secret once."""
    from ..core.errors import InvalidInput

    if facts is None:
        if risk_class is None or autonomy is None:
            raise InvalidInput("give the questionnaire's answers (--facts FILE.yaml), or a declared --risk-class "
                               "and --autonomy", field="--facts")
        _declared_register(org=org, code=code, name=name, risk_class=risk_class, autonomy=autonomy,
                           webhook_url=webhook_url, description=description)
        return
    if risk_class is not None or autonomy is not None:
        raise InvalidInput("with --facts the rule packs decide the risk class and autonomy; leave out --risk-class "
                           "and --autonomy", field="--risk-class" if risk_class is not None else "--autonomy")
    answers = _read_facts(facts)
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        record = _register(platform).register_system(s, code=code, name=name, description=description,
                                                     facts=answers, public=public, webhook_url=webhook_url,
                                                     actor=_actor())
    if as_json:
        _json(record.to_dict())
    else:
        out.print(f"AI system {escape(record.code)} registered (id {record.id}, register no. "
                  f"{escape(record.register_id or '-')}, {'public' if record.public else 'not public'})")
        _print_classification(record.classification)
    if record.webhook_secret:
        print(f"webhook signing secret (shown once): {record.webhook_secret}")


@ai_systems_app.command("update-questionnaire")
@_friendly
def update_questionnaire(
    system: SystemArg,
    org: Org,
    facts: Annotated[Path, typer.Option(help="Answers to change (YAML): null clears one, facts not named stay.")],
    public: Annotated[Optional[bool], typer.Option("--public/--private", help="Show it in the public register.")]
    = None,
    expected_version: Annotated[Optional[int], typer.Option(min=1, help="The version you edited (refused if it "
                                                                        "changed since).")] = None,
    as_json: AsJson = False,
) -> None:
    """Change a system's questionnaire answers; it is re-classified and the diff is shown."""
    answers = _read_facts(facts)
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        record = _register(platform).update_questionnaire(s, _system_id(platform, s, system), facts=answers,
                                                          public=public, expected_version=expected_version,
                                                          actor=_actor())
    if as_json:
        _json(record.to_dict())
        return
    out.print(f"questionnaire of {escape(record.code)} saved (version {record.profile_version})")
    _print_classification(record.classification)


@ai_systems_app.command("show")
@_friendly
def show(system: SystemArg, org: Org, lang: Lang = "en", as_json: AsJson = False) -> None:
    """One system: register number, answers, current classification, obligations."""
    lang = _lang(lang)
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.reader(org_id) as s:
        record = _register(platform).system(s, _system_id(platform, s, system))
    if as_json:
        _json(record.to_dict())
        return
    out.print(f"[bold]{escape(record.name)}[/bold] ({escape(record.code)}, id {record.id}) — register no. "
              f"{escape(record.register_id or '-')}, {'public' if record.public else 'not public'}, "
              f"questionnaire version {record.profile_version or '-'}, status {record.status}")
    out.print(f"risk class {record.risk_class}, autonomy {record.autonomy} (classified by "
              f"{escape(record.classified_by)})")
    _print_classification(record.classification, lang)
    if record.obligations:
        _print_obligations(record.obligations, lang)


@ai_systems_app.command("classify")
@_friendly
def classify(
    system: SystemArg,
    org: Org,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Under the law in force on this day "
                                                                 "(YYYY-MM-DD; default today).")] = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="stricter: the law plus the [plan] proposals; "
                                                                     "law: the law alone (default: the setting).")]
    = None,
    preview: Annotated[bool, typer.Option("--preview", help="Show the result without storing it.")] = False,
    lang: Lang = "en",
    as_json: AsJson = False,
) -> None:
    """Classify a system by the rule packs (stored, with its diff; or --preview, nothing stored)."""
    lang = _lang(lang)
    from ..core.errors import InvalidInput

    when = _date(as_of, "--as-of")
    if profile not in (None, "law", "stricter"):
        raise InvalidInput("choose law or stricter", field="--profile")
    platform = _platform()
    org_id = _org(platform, org)
    opener = platform.db.reader if preview else platform.db.transaction
    with opener(org_id) as s:
        view = _register(platform).classify(s, _system_id(platform, s, system), as_of=when, trigger="manual",
                                            actor=_actor(), persist=not preview,
                                            stricter=None if profile is None else profile == "stricter")
    if as_json:
        _json(view.to_dict())
        return
    _print_classification(view, lang)


@ai_systems_app.command("history")
@_friendly
def history(system: SystemArg, org: Org, as_json: AsJson = False) -> None:
    """Every stored classification of a system, newest first, with what changed each time."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.reader(org_id) as s:
        views = _register(platform).history(s, _system_id(platform, s, system))
    if as_json:
        _json([v.to_dict() for v in views])
        return
    table = Table(title="classifications")
    for col in ("#", "as of", "trigger", "risk", "autonomy", "prohibited", "missing", "packs", "changes"):
        table.add_column(col)
    for v in views:
        table.add_row(str(v.seq), str(v.as_of), v.trigger, v.risk_level or "?", v.autonomy_level or "?",
                      "yes" if v.prohibited else "no", str(len(v.missing_facts)), v.packs_digest[:12],
                      escape(_diff_text(v.diff)))
    out.print(table)


def _diff_text(diff: dict[str, Any] | None) -> str:
    if not diff:
        return "—"
    parts: list[str] = []
    for key, change in diff.items():
        if isinstance(change, (list, tuple)) and len(change) == 2:
            parts.append(f"{key}: {change[0] or '?'} → {change[1] or '?'}")
        elif isinstance(change, dict):
            added, removed = change.get("added") or [], change.get("removed") or []
            parts.append(f"{key}: " + " ".join([f"+{x}" for x in added] + [f"-{x}" for x in removed]))
    return "; ".join(parts)


def _print_classification(view: Any, lang: str = "en") -> None:
    if view is None:
        out.print("not classified yet")
        return
    stored = "stored" if getattr(view, "persisted", True) else "preview, not stored"
    open_ = "undecided" if getattr(view, "law_in_force", True) else "AI law not in force on that date"
    out.print(f"classification as of {view.as_of} ({stored}; packs {view.packs_digest[:12]}, "
              f"profiles {', '.join(view.profiles)}): risk [bold]{view.risk_level or open_}[/bold], "
              f"autonomy [bold]{view.autonomy_level or open_}[/bold]"
              + (", [red]PROHIBITED[/red]" if view.prohibited else ""))
    for finding in view.prohibitions + view.autonomy_violations:
        out.print(f"  [red]prohibited[/red] {escape(finding['rule_id'])}: {escape(_text(finding.get('title'), lang))}"
                  f" ({escape(_citation(finding.get('citation')))})")
    for finding in view.obligations:
        due = f", due {finding['due_on']}" if finding.get("due_on") else ""
        out.print(f"  obligation {escape(str(finding.get('effect', {}).get('code', finding['rule_id'])))}: "
                  f"{escape(_text(finding.get('title'), lang))}{due} ({escape(_citation(finding.get('citation')))})")
    for finding in view.notices:
        out.print(f"  notice {escape(finding['rule_id'])}: {escape(_text(finding.get('title'), lang))}")
    if view.missing_facts:
        out.print(f"  facts missing to decide: {escape(', '.join(m['path'] for m in view.missing_facts))}")
    if view.diff:
        out.print(f"  changed: {escape(_diff_text(view.diff))}")


def _citation(citation: Any) -> str:
    if not isinstance(citation, dict):
        return ""
    parts = [citation.get("law"), citation.get("article") and f"art. {citation['article']}",
             citation.get("paragraph") and f"p. {citation['paragraph']}", citation.get("legal_id")]
    return ", ".join(str(p) for p in parts if p)


# --- obligations ----------------------------------------------------------------------------------------------------


@ai_systems_app.command("obligations")
@_friendly
def obligations(
    org: Org,
    system: Annotated[Optional[str], typer.Option(help="Only this system's (code or id).")] = None,
    status: Annotated[Optional[str], typer.Option(help="open, met, relaxed or void.")] = None,
    lang: Lang = "en",
    as_json: AsJson = False,
) -> None:
    """Obligations of an organization's systems, with due dates and citations."""
    lang = _lang(lang)
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.reader(org_id) as s:
        system_id = _system_id(platform, s, system) if system else None
        views = _register(platform).obligations(s, system_id=system_id, status=status)
    if as_json:
        _json([v.to_dict() for v in views])
        return
    _print_obligations(views, lang)


def _print_obligations(views: list[Any], lang: str) -> None:
    table = Table(title="obligations")
    for col in ("id", "system", "code", "status", "due", "rule", "title"):
        table.add_column(col)
    for v in views:
        due = f"{v.due_on}" + (" OVERDUE" if v.overdue else "") if v.due_on else ""
        table.add_row(str(v.id), escape(v.system_code), escape(v.code), v.status, due, escape(v.rule_id),
                      escape(_text(v.title, lang)))
    out.print(table)


@ai_systems_app.command("obligation-met")
@_friendly
def obligation_met(
    obligation_id: Annotated[int, typer.Argument(help="The obligation's id (see `obligations`).")],
    org: Org,
    evidence: Annotated[str, typer.Option(help="A reference to the evidence (document no., URL) — not personal "
                                               "data.")],
) -> None:
    """Mark an obligation met, with a reference to the evidence."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        view = _register(platform).mark_obligation_met(s, obligation_id, evidence=evidence, actor=_actor())
    out.print(f"obligation {view.id} ({escape(view.code)}) of {escape(view.system_code)} is {view.status}")


# --- the public register -----------------------------------------------------------------------------------------


@ai_systems_app.command("public")
@_friendly
def public(
    csv: Annotated[bool, typer.Option("--csv", help="The open-data CSV (to stdout).")] = False,
    sector: Annotated[Optional[str], typer.Option(help="Only this sector.")] = None,
    risk: Annotated[Optional[str], typer.Option(help="Only this risk level.")] = None,
    q: Annotated[Optional[str], typer.Option(help="Words of the system's or operator's name.")] = None,
    operator_bin: Annotated[Optional[str], typer.Option("--operator-bin", help="Only this operator (BIN).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: AsJson = False,
) -> None:
    """The public register of AI systems (what anyone sees without logging in)."""
    platform = _platform()
    register = _register(platform)
    filters = {"sector": sector, "risk": risk, "q": q, "operator_bin": operator_bin}
    with platform.db.reader() as s:
        if csv:
            for line in register.public_csv(s, **filters):
                sys.stdout.write(line)
            sys.stdout.flush()
            return
        page = register.public_register(s, limit=limit, offset=offset, **filters)
    if as_json:
        _json(page.to_dict())
        return
    table = Table(title=f"public register ({page.total} systems)")
    for col in ("register no.", "operator", "BIN", "system", "sector", "risk", "autonomy", "prohibited", "trusted"):
        table.add_column(col)
    for v in page.items:
        table.add_row(escape(v.register_id), escape(v.operator_name), v.operator_bin, escape(v.name),
                      escape(v.sector or ""), v.risk_level or "?", v.autonomy_level or "?",
                      "yes" if v.prohibited else "no", v.trusted_status or "")
    out.print(table)


# --- audits, trusted lists, sandbox ------------------------------------------------------------------------------


@ai_systems_app.command("audit-record")
@_friendly
def audit_record(
    system: SystemArg,
    org: Org,
    auditor: Annotated[str, typer.Option(help="Who audited (firm or person's professional name).")],
    audited_on: Annotated[str, typer.Option("--audited-on", help="YYYY-MM-DD.")],
    result: Annotated[str, typer.Option(help="passed or failed.")],
    covers_training_data: Annotated[bool, typer.Option("--covers-training-data/--no-training-data",
                                                       help="The audit covered the training data's legality and "
                                                            "quality.")] = False,
    prohibited_found: Annotated[bool, typer.Option("--prohibited-found/--no-prohibited-found",
                                                   help="Prohibited functionality was found.")] = False,
    summary: Annotated[Optional[str], typer.Option(help="A short summary (no personal data).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="The audit report; its SHA-256 is recorded, not the "
                                                        "file.")] = None,
) -> None:
    """Record an audit of a system (the evidence a trusted-list request needs, L-AI-TRUSTED)."""
    from ..core.errors import InvalidInput

    day = _date(audited_on, "--audited-on")
    digest = None
    if report is not None:
        try:
            digest = hashlib.sha256(report.read_bytes()).hexdigest()
        except OSError as exc:
            raise InvalidInput(f"cannot read {report}: {type(exc).__name__}", field="--report") from None
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        view = _governance(platform).record_audit(
            s, _system_id(platform, s, system), auditor=auditor, audited_on=day,
            covers_training_data=covers_training_data, prohibited_functionality_found=prohibited_found,
            result=result, summary=summary, report_sha256=digest, actor=_actor())
    out.print(f"audit {view.id} recorded ({result})")


@ai_systems_app.command("trusted-request")
@_friendly
def trusted_request(
    system: SystemArg,
    org: Org,
    sector: Annotated[str, typer.Option(help="The sector's trusted list.")],
    audit_id: Annotated[int, typer.Option("--audit-id", help="A passed audit of the system (see audit-record).")],
) -> None:
    """Ask the regulator to include a high-risk system in a sector's list of trusted systems."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        view = _governance(platform).request_trusted(s, _system_id(platform, s, system), sector=sector,
                                                     audit_id=audit_id, actor=_actor())
    out.print(f"trusted-list request {view.id} sent ({view.status})")


@ai_systems_app.command("sandbox-apply")
@_friendly
def sandbox_apply(
    org: Org,
    title: Annotated[str, typer.Option(help="The experiment's title.")],
    description: Annotated[str, typer.Option(help="What you will test and how.")],
    system: Annotated[list[str], typer.Option("--system", help="A system inside (code or id), repeatable.")],
    relax: Annotated[Optional[list[str]], typer.Option("--relax", help="An obligation rule to relax (its id; "
                                                                       "relaxable rules only), repeatable.")]
    = None,
) -> None:
    """Apply to the regulatory sandbox (L-AI-SANDBOX, a plan of the law)."""
    platform = _platform()
    org_id = _org(platform, org)
    with platform.db.transaction(org_id) as s:
        ids = [_system_id(platform, s, x) for x in system]
        view = _governance(platform).apply_sandbox(s, title=title, description=description, system_ids=ids,
                                                   requested_relaxations=list(relax or []), actor=_actor())
    out.print(f"sandbox application {view.id} submitted ({view.status})")


# --- the maturity index ------------------------------------------------------------------------------------------------


@ai_systems_app.command("maturity")
@_friendly
def maturity(
    org: Org,
    trend: Annotated[bool, typer.Option("--trend", help="The kept daily indexes instead.")] = False,
    days: Annotated[int, typer.Option(min=1, max=3660, help="With --trend: this many days back.")] = 365,
    snapshot: Annotated[bool, typer.Option("--snapshot", help="Keep today's index for the trend.")] = False,
    lang: Lang = "en",
    as_json: AsJson = False,
) -> None:
    """The organization's maturity index (0–100) with its breakdown, or its trend (L-AI-MATURITY, a plan)."""
    lang = _lang(lang)
    platform = _platform()
    org_id = _org(platform, org)
    governance = _governance(platform)
    if trend:
        with platform.db.reader(org_id) as s:
            points = governance.maturity_trend(s, days=days)
        if as_json:
            _json([{"on": on.isoformat(), "score": score} for on, score in points])
            return
        table = Table(title="maturity trend")
        table.add_column("day")
        table.add_column("score", justify="right")
        for on, score in points:
            table.add_row(on.isoformat(), f"{score:.1f}")
        out.print(table)
        return
    opener = platform.db.transaction if snapshot else platform.db.reader
    with opener(org_id) as s:
        view = governance.snapshot_maturity(s) if snapshot else governance.maturity(s)
    data = view.to_dict()
    if as_json:
        _json(data)
        return
    out.print(f"maturity index [bold]{_score(data.get('score'))}[/bold] / 100 (formula "
              f"{escape(str(data.get('formula_version', '')))})" + (" — kept for the trend" if snapshot else ""))
    table = Table()
    for col in ("component", "weight", "value", "count"):
        table.add_column(col)
    for c in data.get("components", []):
        value = c.get("value")
        table.add_row(escape(_text(c.get("title"), lang) or c.get("code", "")), f"{c.get('weight', 0):g}",
                      "—" if value is None else f"{value:.2f}", f"{c.get('numerator')}/{c.get('denominator')}")
    out.print(table)


def _score(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1f}"


__all__ = ["ai_systems_app"]
