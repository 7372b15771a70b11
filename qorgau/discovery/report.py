"""Reports of a scan: a Rich table, a JSON report, JSON Lines, SARIF 2.1.0 and a self-contained HTML page.

Every format shows *where* personal data is and *what kind*, never the data: findings carry offsets,
and the HTML snippets were masked when the scan ran (:func:`.scanning.masked_snippet`). The JSON Lines
contract for ``.jsonl`` inputs (one ``{"id", "findings"}`` object per record) is written by
:func:`contract_line`, because other tools (the vault, the leak register) parse it.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from .. import __version__
from .scanning import Place, SourceResult
from .types import CATEGORY_OF, EntityType

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_URI = "https://github.com/qorgau/qorgau"
DESCRIPTIONS = {
    "KZ_IIN": "Kazakhstan individual identification number (IIN, ЖСН/ИИН)",
    "KZ_BIN": "Kazakhstan business identification number (BIN, БСН/БИН)",
    "PHONE_NUMBER": "Phone number",
    "EMAIL_ADDRESS": "E-mail address",
    "IBAN_CODE": "IBAN bank account",
    "CREDIT_CARD": "Payment card number",
    "KZ_PASSPORT": "Kazakhstan passport number",
    "KZ_ID_CARD": "Kazakhstan ID card number",
    "PERSON": "Person's name",
    "ADDRESS": "Postal address",
    "DATE_OF_BIRTH": "Date of birth",
    "IP_ADDRESS": "IP address",
    "KZ_VEHICLE_PLATE": "Kazakhstan vehicle registration plate",
}


# --- JSON Lines -------------------------------------------------------------------------------------


def contract_line(place: Place, *, explain: bool = False) -> str:
    """One line of the JSON Lines contract: ``{"id", "findings": [{type, start, end, score, category,
    recognizer}]}``, offsets into the record's text field; ``"error"`` added when the record had no
    usable text (it is still written, with no findings, so output lines match input records)."""
    out: dict[str, Any] = {"id": place.location.get("id"),
                           "findings": [f.to_dict(explain=explain) for f in place.findings]}
    if place.error:
        out["error"] = place.error
    return json.dumps(out, ensure_ascii=False)


def place_line(result: SourceResult, place: Place, *, explain: bool = False) -> str:
    """``--format jsonl`` for any input: one object per place with findings."""
    out: dict[str, Any] = {"source": result.source, "location": place.location,
                           "findings": [f.to_dict(explain=explain) for f in place.findings]}
    if place.error:
        out["error"] = place.error
    return json.dumps(out, ensure_ascii=False, default=str)


# --- the full report object -------------------------------------------------------------------------


def totals(results: Iterable[SourceResult]) -> dict[str, Any]:
    """Counts over every source: per type, per category, and how many sources found / failed / skipped."""
    by_type: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    summary = {"sources": 0, "with_findings": 0, "failed": 0, "skipped": 0, "bytes": 0, "rows": 0}
    for r in results:
        summary["sources"] += 1
        summary["with_findings"] += r.found
        summary["failed"] += r.failed
        summary["skipped"] += r.skipped is not None
        summary["bytes"] += r.bytes_scanned
        summary["rows"] += r.rows_scanned
        by_type.update(r.counts)
        by_category.update(r.categories)
    return {**summary, "findings": sum(by_type.values()), "by_type": dict(by_type.most_common()),
            "by_category": dict(by_category.most_common())}


def source_dict(result: SourceResult, *, explain: bool = False, places: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source": result.source, "kind": result.kind, "encoding": result.encoding,
        "bytes_scanned": result.bytes_scanned, "rows_scanned": result.rows_scanned,
        "seconds": round(result.seconds, 3), "counts": dict(result.counts.most_common()),
        "categories": dict(result.categories.most_common()), "errors": list(result.errors),
        "notes": list(result.notes), "skipped": result.skipped,
    }
    if places:
        out["places"] = [{"location": p.location, "findings": [f.to_dict(explain=explain) for f in p.findings],
                          **({"error": p.error} if p.error else {})} for p in result.places]
    return out


def report_dict(results: list[SourceResult], *, explain: bool = False,
                started: datetime | None = None) -> dict[str, Any]:
    """``--format json``: the whole scan as one object (totals, then every source with its places)."""
    return {"tool": "qorgau", "version": __version__,
            "generated_at": (started or datetime.now(UTC)).isoformat(timespec="seconds"),
            "totals": totals(results), "sources": [source_dict(r, explain=explain) for r in results]}


# --- table ------------------------------------------------------------------------------------------


def summary_table(results: list[SourceResult]) -> Table:
    """``--format table``: one row per source and type, with category, count, and problems."""
    table = Table(title="Personal data found", show_lines=False)
    for name, justify in (("source", "left"), ("type", "left"), ("category", "left"), ("count", "right"),
                          ("notes", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in results:
        note = _result_note(r)
        if not r.counts:
            table.add_row(escape(r.source), "—", "", "0", note)
            continue
        for i, (entity_type, n) in enumerate(sorted(r.counts.items(), key=lambda kv: (-kv[1], kv[0]))):
            category = CATEGORY_OF.get(entity_type)
            table.add_row(escape(r.source) if i == 0 else "", entity_type, category.value if category else "", str(n),
                          note if i == 0 else "")
    t = totals(results)
    table.caption = (f"{t['findings']} finding(s) in {t['with_findings']} of {t['sources']} source(s); "
                     f"{t['failed']} failed, {t['skipped']} skipped; "
                     + ", ".join(f"{k}: {v}" for k, v in t["by_category"].items()))
    return table


def _result_note(r: SourceResult) -> str:
    if r.skipped:
        return "skipped: " + escape(r.skipped)
    parts = []
    if r.errors:
        more = f" (+{len(r.errors) - 1} more)" if len(r.errors) > 1 else ""
        parts.append("[red]error:[/red] " + escape(r.errors[0] + more))
    if r.encoding and r.encoding not in ("utf-8", "ascii"):
        parts.append(f"encoding {escape(r.encoding)}")
    parts.extend(escape(n) for n in r.notes)
    return "; ".join(parts)


# --- SARIF 2.1.0 ------------------------------------------------------------------------------------


def sarif(results: list[SourceResult]) -> dict[str, Any]:
    """``--format sarif``: one run, a rule per entity type, a result per finding.

    Text files get a physical region (line, column; columns count Unicode code points, as Python
    offsets do, so ``columnKind`` says so); cells, pages, records and database columns get a logical
    location (``table.column`` row N, ``sheet!B7`` …). Failed sources become tool notifications.
    """
    rule_ids = [t.value for t in EntityType]
    seen_extra = sorted({t for r in results for t in r.counts} - set(rule_ids))
    rule_ids += seen_extra
    index = {rule: i for i, rule in enumerate(rule_ids)}
    rules = [{"id": rule, "name": rule.title().replace("_", ""),
              "shortDescription": {"text": DESCRIPTIONS.get(rule, rule)},
              "properties": {"category": CATEGORY_OF[rule].value if rule in CATEGORY_OF else "identifying"}}
             for rule in rule_ids]
    sarif_results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for r in results:
        for place in r.places:
            for f in place.findings:
                sarif_results.append({
                    "ruleId": f.type, "ruleIndex": index[f.type],
                    "level": "error" if f.score >= 0.85 else "warning" if f.score >= 0.5 else "note",
                    "message": {"text": f"{DESCRIPTIONS.get(f.type, f.type)} ({f.category}), "
                                        f"score {f.score:.2f}, by {f.recognizer}"},
                    "locations": [_sarif_location(r, place, f.start, f.end)],
                    "properties": {"score": round(f.score, 4), "category": f.category, "recognizer": f.recognizer},
                })
        for error in r.errors:
            notifications.append({"level": "error", "message": {"text": error},
                                  "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(r.source)}}}]})
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "qorgau", "version": __version__, "informationUri": TOOL_URI, "rules": rules}},
        "columnKind": "unicodeCodePoints",
        "results": sarif_results,
        "invocations": [{"executionSuccessful": not any(r.failed for r in results),
                         "toolExecutionNotifications": notifications}],
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _uri(source: str) -> str:
    return source if "://" in source else source.replace("\\", "/")


def _sarif_location(r: SourceResult, place: Place, start: int, end: int) -> dict[str, Any]:
    loc = place.location
    artifact = {"uri": _uri(r.source)}
    if set(loc) == {"line"}:
        return {"physicalLocation": {"artifactLocation": artifact,
                                     "region": {"startLine": loc["line"], "startColumn": start + 1,
                                                "endColumn": end + 1}}}
    name = logical_name(loc)
    logical = {"name": name, "fullyQualifiedName": f"{r.source}#{name}", "kind": "member",
               "properties": {"start": start, "end": end}}
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if "page" in loc:
        physical["region"] = {"startLine": 1, "properties": {"page": loc["page"]}}
    return {"physicalLocation": physical, "logicalLocations": [logical]} if "://" not in r.source else \
        {"logicalLocations": [logical]}


def logical_name(loc: dict[str, Any]) -> str:
    """A short human name for a place: ``Sheet1!B7``, ``clients.iin row 3``, ``$.a.b``, ``page 2``."""
    if "sheet" in loc:
        return f"{loc['sheet']}!{loc['cell']}"
    if "table" in loc and "column" in loc:
        return f"{loc['table']}.{loc['column']} row {loc['row']}"
    if "table" in loc:
        return f"table {loc['table']} row {loc['row']} cell {loc['cell']}"
    if "row" in loc:
        return f"row {loc['row']} column {loc['column']}"
    if "line" in loc and "path" in loc:
        return f"line {loc['line']} {loc['path']}"
    if "line" in loc and "field" in loc:
        return f"line {loc['line']} {loc['field']}"
    if "path" in loc:
        return str(loc["path"])
    if "page" in loc:
        return f"page {loc['page']}"
    if "paragraph" in loc:
        return f"paragraph {loc['paragraph']}"
    if "section" in loc:
        return f"section {loc['section']} {loc['part']}"
    if "line" in loc:
        return f"line {loc['line']}"
    return ", ".join(f"{k} {v}" for k, v in loc.items())


# --- HTML -------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:70rem;
color:#1d2430;padding:0 1rem}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border-bottom:1px solid #d8dde6;padding:.3rem .7rem;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
.snip{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap}mark{background:#ffe08a;padding:0 .15em}
.err{color:#a4161a}.muted{color:#5b6577}svg text{font-size:12px;fill:#1d2430}
"""
MAX_SNIPPETS_PER_SOURCE = 200


def html_report(results: list[SourceResult], *, title: str = "qorgau scan report",
                started: datetime | None = None) -> str:
    """``--format html``: one self-contained page (inline CSS and SVG, no scripts, no external assets).

    Counts per type and category, a bar chart, and per source the places with masked snippets. Every
    string from the input (file names, column names, snippets) goes through ``html.escape``.
    """
    t = totals(results)
    e = html.escape
    when = (started or datetime.now(UTC)).isoformat(timespec="seconds")
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
             f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{_CSS}</style></head><body>",
             f"<h1>{e(title)}</h1><p class=\"muted\">qorgau {e(__version__)} · {e(when)} · {t['sources']} source(s), "
             f"{t['findings']} finding(s), {t['failed']} failed, {t['skipped']} skipped. "
             "Found values are masked.</p>",
             "<h2>By type</h2>", _bar_chart(t["by_type"]), _count_table("type", t["by_type"]),
             "<h2>By category</h2>", _count_table("category", t["by_category"]), "<h2>Sources</h2>",
             "<table><tr><th>source</th><th>kind</th><th>encoding</th><th>findings</th><th>notes</th></tr>"]
    for r in results:
        notes = [*(f"<span class=\"err\">{e(x)}</span>" for x in r.errors), *(e(x) for x in r.notes)]
        if r.skipped:
            notes.insert(0, "skipped: " + e(r.skipped))
        parts.append(f"<tr><td>{e(r.source)}</td><td>{e(r.kind)}</td><td>{e(r.encoding or '')}</td>"
                     f"<td class=\"n\">{r.total}</td><td>{'<br>'.join(notes)}</td></tr>")
    parts.append("</table>")
    for r in results:
        if r.places:
            parts.append(_snippets_section(r))
    parts.append("</body></html>")
    return "".join(parts)


def _count_table(label: str, counts: dict[str, int]) -> str:
    e = html.escape
    rows = "".join(f"<tr><td>{e(k)}</td><td class=\"n\">{v}</td></tr>" for k, v in counts.items())
    return f"<table><tr><th>{e(label)}</th><th>count</th></tr>{rows or '<tr><td colspan=2>none</td></tr>'}</table>"


def _bar_chart(counts: dict[str, int]) -> str:
    """An inline SVG horizontal bar chart: one bar per type, longest = most findings."""
    if not counts:
        return "<p class=\"muted\">No personal data found.</p>"
    bar_h, gap, label_w, chart_w = 18, 6, 160, 420
    top = max(counts.values())
    rows = []
    for i, (name, n) in enumerate(counts.items()):
        y = i * (bar_h + gap)
        w = max(1, round(chart_w * n / top))
        rows.append(f"<text x=\"0\" y=\"{y + 13}\">{html.escape(name)}</text>"
                    f"<rect x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"{bar_h}\" fill=\"#3a6ea5\"/>"
                    f"<text x=\"{label_w + w + 6}\" y=\"{y + 13}\">{n}</text>")
    height = len(counts) * (bar_h + gap)
    return (f"<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"findings per type\" "
            f"width=\"{label_w + chart_w + 60}\" height=\"{height}\">{''.join(rows)}</svg>")


def _snippets_section(r: SourceResult) -> str:
    e = html.escape
    rows: list[str] = []
    shown = 0
    for place in r.places:
        for i, f in enumerate(place.findings):
            if shown >= MAX_SNIPPETS_PER_SOURCE:
                break
            snippet = ""
            if i < len(place.snippets):
                before, value, after = place.snippets[i]
                snippet = f"{e(before)}<mark>{e(value)}</mark>{e(after)}"
            rows.append(f"<tr><td>{e(logical_name(place.location))}</td><td>{e(f.type)}</td><td>{e(f.category)}</td>"
                        f"<td class=\"n\">{f.score:.2f}</td><td class=\"snip\">{snippet}</td></tr>")
            shown += 1
    more = r.total - shown
    tail = f"<p class=\"muted\">… and {more} more.</p>" if more > 0 else ""
    return (f"<h2>{e(r.source)}</h2><table><tr><th>where</th><th>type</th><th>category</th><th>score</th>"
            f"<th>snippet (masked)</th></tr>{''.join(rows)}</table>{tail}")
