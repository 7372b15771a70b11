"""``qorgau rules``: the law as code — list, show, test, export, check and evaluate rule packs.

By default the commands read the current rule book: the built-in packs (``qorgau/rules/packs/``), the operator's
own (setting ``rules_extra_dirs`` / ``QORGAU_RULES_EXTRA_DIRS``) and the facts catalogue ``qorgau/rules/facts.yaml``.
``qorgau rules --packs-dir DIR [--packs-dir DIR2] [--catalog FACTS.yaml] …`` reads those instead (the
built-in packs are then not loaded). The ``stricter`` profile ([plan] proposals, not yet law) is on with
``--profile stricter`` or the setting ``rules_stricter_profile``.

Exit codes: 0 done, 1 an embedded example failed (``test``, ``check``), 2 bad input or an invalid pack (the
message names the file and line).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

rules_app = typer.Typer(help="The law as code: rule packs (list, show, test, export, check, evaluate).",
                        no_args_is_help=True)

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
AsJson = Annotated[bool, typer.Option("--json", help="JSON output.")]
AsOf = Annotated[Optional[str], typer.Option("--as-of", help="The date the law is read as of (YYYY-MM-DD; "
                                                              "default: today in Kazakhstan).")]
Profile = Annotated[Optional[list[str]], typer.Option("--profile", help="Also apply this profile: stricter "
                                                                         "(proposals tagged plan, not yet law).")]
Lang = Annotated[str, typer.Option("--lang", help="kk, ru or en.")]

_source: dict[str, Any] = {"packs": None, "catalog": None}


def _friendly(fn: F) -> F:
    """Domain errors (an invalid pack, bad input) as one red line and exit code 2."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        from ..core.errors import QorgauError

        try:
            return fn(*args, **kwargs)
        except QorgauError as exc:
            where = f" [{exc.field}]" if exc.field else ""
            err.print(f"[red]error{escape(where)}:[/red] {escape(exc.message)}", soft_wrap=True)
            raise typer.Exit(2) from None

    @functools.wraps(fn)
    def outer(*args: Any, **kwargs: Any) -> Any:
        from .main import friendly_errors

        return friendly_errors(guarded)(*args, **kwargs)

    return outer  # type: ignore[return-value]


@rules_app.callback()
def rules_main(
    packs_dir: Annotated[Optional[list[Path]], typer.Option(
        "--packs-dir", help="Read rule packs from this directory or file instead of the built-in ones and "
                            "rules_extra_dirs (repeatable).")] = None,
    catalog: Annotated[Optional[Path], typer.Option(
        "--catalog", help="The facts catalogue (default: qorgau/rules/facts.yaml).")] = None,
) -> None:
    """The law as code: rule packs over a catalogue of facts."""
    _source["packs"] = list(packs_dir) if packs_dir else None
    _source["catalog"] = catalog


def _book() -> Any:
    from ..rules import load_rulebook, rulebook

    if _source["packs"] is None and _source["catalog"] is None:
        return rulebook()
    return load_rulebook(_source["packs"], facts=_source["catalog"])


def _as_of(value: str | None) -> date:
    from ..core.calendar import ALMATY
    from ..core.errors import InvalidInput

    if value is None:
        from datetime import datetime

        return datetime.now(ALMATY).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("not a date (YYYY-MM-DD)", field="--as-of") from None


def _profiles(values: list[str] | None) -> tuple[str, ...]:
    from ..rules import default_profiles, normalize_profiles
    from ..core.errors import InvalidInput

    if not values:
        return default_profiles()
    try:
        return normalize_profiles(values)
    except InvalidInput:
        raise InvalidInput("unknown profile; choose stricter (law is always on)", field="--profile") from None


def _lang(value: str) -> str:
    from ..core.errors import InvalidInput

    if value not in ("kk", "ru", "en"):
        raise InvalidInput("choose kk, ru or en", field="--lang")
    return value


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _period(rule: Any) -> str:
    until = rule.effective_until.isoformat() if rule.effective_until else "…"
    return f"{rule.effective_from.isoformat()} – {until}"


def _effect(effect: dict[str, Any]) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in effect.items() if k != "type")
    return f"{effect['type']}" + (f" ({rest})" if rest else "")


@rules_app.command("list")
@_friendly
def rules_list(
    subject: Annotated[Optional[str], typer.Option(help="ai_system, processing or incident.")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Only rules in force on this date "
                                                                   "(YYYY-MM-DD).")] = None,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """The rules (of the law, plus the stricter proposals with --profile stricter)."""
    from ..core.errors import InvalidInput

    if subject is not None and subject not in ("ai_system", "processing", "incident"):
        raise InvalidInput("choose ai_system, processing or incident", field="--subject")
    book = _book()
    day = _as_of(as_of) if as_of else None
    rules = book.rules(subject=subject, profiles=_profiles(profile), as_of=day)
    if as_json:
        _json({"digest": book.digest, "as_of": day.isoformat() if day else None,
               "rules": [{**r.to_dict(), "not_yet_law": r.profile == "stricter"} for r in rules]})
        return
    table = Table(title=f"Rules ({len(rules)}), digest {book.digest[:12]}")
    for col in ("id", "pack", "subject", "status", "citation", "in force", "effect"):
        table.add_column(col)
    for r in rules:
        marker = " [yellow](not yet law)[/yellow]" if r.profile == "stricter" else ""
        table.add_row(escape(r.id) + marker, escape(r.pack_id), r.subject, r.status, escape(str(r.citation)),
                      _period(r), escape(_effect(dict(r.effect))))
    out.print(table)


@rules_app.command("show")
@_friendly
def rules_show(rule_id: Annotated[str, typer.Argument(help="The rule's id.")], lang: Lang = "en",
               as_json: AsJson = False) -> None:
    """One rule: citation, period, explanation, condition, effect and its examples."""
    _lang(lang)
    rule = _book().rule(rule_id)
    if as_json:
        _json({**rule.to_dict(), "not_yet_law": rule.profile == "stricter"})
        return
    title = rule.title.get(lang) or rule.title.get("en", "")
    out.print(f"[bold]{escape(title)}[/bold]  ({escape(rule.id)}, pack {escape(rule.pack_id)}, status "
              f"{rule.status}{', [yellow]not yet law[/yellow]' if rule.profile == 'stricter' else ''})")
    out.print(f"citation: {escape(str(rule.citation))}")
    out.print(f"in force: {_period(rule)}")
    out.print(escape(rule.explanation.get(lang) or rule.explanation.get("en", "")))
    out.print(f"when: {escape(rule.when)}", soft_wrap=True)
    out.print(f"effect: {escape(_effect(dict(rule.effect)))}")
    out.print(f"facts used: {escape(', '.join(rule.facts_used) or '—')}")
    for ex in rule.examples:
        when = f" as of {ex.as_of.isoformat()}" if ex.as_of else ""
        out.print(f"  example {escape(ex.name)}{when}: {'fires' if ex.fires else 'does not fire'}")


@rules_app.command("test")
@_friendly
def rules_test(as_json: AsJson = False) -> None:
    """Run every rule's embedded examples; exit 1 (and list them) if any fails."""
    results = _book().test()
    failed = [r for r in results if not r.ok]
    if as_json:
        _json({"examples": len(results), "failed": len(failed), "results": [r.to_dict() for r in results]})
    else:
        for r in failed:
            got = "undecided" if r.got is None else ("fires" if r.got else "does not fire")
            out.print(f"[red]FAIL[/red] {escape(r.rule_id)} — {escape(r.name)}: expected "
                      f"{'fires' if r.expected else 'does not fire'}, got {got}"
                      + (f" ({escape(r.error)})" if r.error else ""))
        out.print(f"{len(results) - len(failed)} of {len(results)} examples pass")
    if failed:
        raise typer.Exit(1)


@rules_app.command("export")
@_friendly
def rules_export(
    fmt: Annotated[str, typer.Option("--format", help="json or html.")] = "json",
    lang: Lang = "en",
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write to this file (default: "
                                                                          "stdout).")] = None,
) -> None:
    """The law as code: every pack and rule as JSON, or as one readable HTML page."""
    from ..core.errors import InvalidInput

    if fmt not in ("json", "html"):
        raise InvalidInput("choose json or html", field="--format")
    book = _book()
    text = (json.dumps(book.export(), ensure_ascii=False, indent=2) + "\n" if fmt == "json"
            else book.export_html(_lang(lang)))
    if output is None:
        sys.stdout.write(text)
        return
    try:
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(output)
    except OSError as exc:
        raise InvalidInput(f"cannot write the file ({exc.strerror or 'I/O error'})", field="--output") from None
    err.print(f"written: {escape(str(output))}")


@rules_app.command("check")
@_friendly
def rules_check(files: Annotated[list[Path], typer.Argument(help="Pack files or directories to check.")]) -> None:
    """Check packs (schema, CEL, facts, ids, conflicts with the current packs, examples) without loading them."""
    from ..rules.engine import check_book, default_pack_paths, run_example
    from ..rules.facts import DEFAULT_CATALOG, empty_catalog, load_catalog
    from ..rules.loader import pack_files, parse_pack

    catalog_path = _source["catalog"] or DEFAULT_CATALOG
    catalog = load_catalog(catalog_path) if (_source["catalog"] or DEFAULT_CATALOG.exists()) else empty_catalog()
    checked = pack_files(files)
    base = _source["packs"] if _source["packs"] is not None else default_pack_paths()
    others = [p for p in pack_files(base)] if base else []
    mine = {p.resolve() for p in checked}
    packs = [parse_pack(p, catalog) for p in checked]
    context = [parse_pack(p, catalog) for p in others if p.resolve() not in mine]
    check_book(context + packs, catalog)
    failed = []
    total = 0
    for pack in packs:
        for rule in pack.rules:
            for example in rule.examples:
                total += 1
                result = run_example(rule, example, catalog)
                if not result.ok:
                    failed.append(result)
    for r in failed:
        got = "undecided" if r.got is None else ("fires" if r.got else "does not fire")
        out.print(f"[red]FAIL[/red] {escape(r.rule_id)} — {escape(r.name)}: expected "
                  f"{'fires' if r.expected else 'does not fire'}, got {got}"
                  + (f" ({escape(r.error)})" if r.error else ""))
    rules = sum(len(p.rules) for p in packs)
    out.print(f"{'[green]valid[/green]' if not failed else '[red]invalid[/red]'}: {len(packs)} pack(s), {rules} "
              f"rule(s), {total - len(failed)} of {total} examples pass")
    if failed:
        raise typer.Exit(1)


@rules_app.command("evaluate")
@_friendly
def rules_evaluate(
    facts: Annotated[Path, typer.Option("--facts", help="The facts: a YAML or JSON file, nested "
                                                         "({functions: {emotion_recognition: true}}) or flat "
                                                         "({functions.emotion_recognition: true}).")],
    subject: Annotated[str, typer.Option(help="ai_system, processing or incident.")] = "ai_system",
    as_of: AsOf = None,
    profile: Profile = None,
    as_json: AsJson = False,
    lang: Lang = "en",
) -> None:
    """Evaluate the rules in force against a subject's facts: risk, autonomy, prohibitions, obligations."""
    from ..core.errors import InvalidInput

    _lang(lang)
    data = _read_facts(facts)
    if not isinstance(data, dict):
        raise InvalidInput("the facts file must hold a mapping", field="--facts")
    ev = _book().evaluate(data, subject=subject, as_of=_as_of(as_of), profiles=_profiles(profile))
    if as_json:
        _json(ev.to_dict())
        return

    def title(f: Any) -> str:
        return escape(f.title.get(lang) or f.title.get("en", ""))

    out.print(f"as of {ev.as_of.isoformat()}, profiles {', '.join(ev.profiles)}, rules {ev.digest[:12]}")
    open_ = "undecided" if ev.law_in_force else "no risk rule in force on that date"
    out.print(f"risk level: [bold]{ev.risk_level or open_}[/bold]"
              + (f" ({', '.join(escape(f.rule_id) for f in ev.risk_reasons)})" if ev.risk_reasons else ""))
    out.print(f"autonomy: [bold]{ev.autonomy_level or open_}[/bold]")
    out.print(f"prohibited: [bold]{'YES' if ev.prohibited else 'no'}[/bold]")
    for label, items in (("prohibition", ev.prohibitions), ("autonomy not allowed", ev.autonomy_violations),
                         ("obligation", ev.obligations), ("notice", ev.notices)):
        for f in items:
            out.print(f"  {label}: {escape(f.rule_id)} — {title(f)} [{escape(str(f.citation))}]")
    if ev.undecided:
        out.print(f"undecided ({len(ev.undecided)} rules), facts missing: {escape(', '.join(ev.missing_facts))}")


def _read_facts(path: Path) -> Any:
    from ..core.errors import InvalidInput
    from ..rules.loader import RulePackError, load_yaml

    if not path.is_file():
        raise InvalidInput("no such file", field="--facts")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            raise InvalidInput(f"not valid JSON{f' (line {line})' if line else ''}", field="--facts") from None
    try:
        data = load_yaml(path)
    except RulePackError as exc:
        raise InvalidInput(exc.message, field="--facts") from None
    return _dates_kept(data)


def _dates_kept(data: Any) -> Any:
    """Plain dicts/lists from the line-aware YAML tree, keeping dates (the engine accepts them)."""
    if isinstance(data, dict):
        return {str(k): _dates_kept(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_dates_kept(v) for v in data]
    return data
