"""The leak register's public transparency page, ``/leaks/transparency`` — no login (issue 8; L-PD-LEAK-REGISTER).

Thin over :mod:`qorgau.leaks.transparency`: published incidents above the size threshold, counted by sector, data
class, month and nature, drawn as server-rendered SVG bar charts (a ``<title>``/``<desc>`` each and the same
numbers in a table), with suppressed cells shown as "<10", and the list of published incidents. Links to the
open data (``/api/v1/public/leaks/…``). No identifier parameter exists here: the page cannot answer whether
someone's data leaked.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ..core.platform import Platform
from ..leaks.models import SECTORS
from ..leaks.transparency import Table, labels_for, transparency_for
from .modules import N_
from .routes import choose_language, optional_principal, render

router = APIRouter(include_in_schema=False)

LIST_LIMIT = 100
CHART_W = 640
LABEL_W = 230      # room for the category labels left of the bars (the longest Russian one: ~190px)
VALUE_W = 70       # room for the value right of the bars
ROW_H = 22
BAR_H = 14
PAD = 8

CHART_TITLES = {
    "sector": N_("Incidents by sector"),
    "sector-people": N_("People affected by sector"),
    "data_class": N_("Incidents by class of leaked data"),
    "month": N_("Incidents by month of the report (last 24 months)"),
    "nature": N_("Incidents by nature of the breach"),
}
CATEGORY_HEADINGS = {
    "sector": N_("Operator's sector"),
    "data_class": N_("Class of leaked data"),
    "month": N_("Month reported"),
    "nature": N_("How the breach happened"),
}


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _number(value: int) -> str:
    return f"{value:,}".replace(",", " ")  # thousands grouped by a space, as kk and ru write them


def bar_chart(table: Table, labels: dict[str, str], measure: str = "incidents") -> dict[str, Any]:
    """Horizontal bars of ``measure`` (incidents or people) per category, as SVG coordinates. A suppressed cell
    gets no bar, only the "<10" marker (a short dashed outline), so its size is not drawn either."""
    values = [getattr(c, measure) for c in table.cells if getattr(c, measure) is not None]
    top = max(values, default=0) or 1
    inner = CHART_W - LABEL_W - VALUE_W
    rows = []
    for n, cell in enumerate(table.cells):
        y = PAD + n * ROW_H
        value = getattr(cell, measure)
        width = 0.0 if value is None else round(inner * value / top, 1)
        rows.append({"key": cell.key, "label": labels.get(cell.key, cell.key), "y": y, "bar_y": y + (ROW_H - BAR_H) / 2,
                     "text_y": y + ROW_H / 2 + 4, "width": max(width, 1.0) if value else width,
                     "value": None if value is None else _number(value), "suppressed": cell.suppressed,
                     "value_x": LABEL_W + width + 6})
    height = PAD * 2 + ROW_H * len(rows)
    return {"w": CHART_W, "h": height, "label_x": LABEL_W - 8, "bar_x": LABEL_W, "rows": rows,
            "marker_w": round(inner * 0.04, 1), "axis_y1": PAD, "axis_y2": height - PAD}


@router.get("/leaks/transparency")
def transparency_page(request: Request,
                      sector: Annotated[str, Query(max_length=32)] = "",
                      page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    platform = _platform(request)
    principal = optional_principal(request)
    lang = choose_language(request, principal)
    service = transparency_for(platform)
    chosen = sector if sector in SECTORS else None
    with platform.db.reader() as session:
        stats = service.statistics(session)
        listing = service.published_incidents(session, sector=chosen, limit=LIST_LIMIT,
                                              offset=(page - 1) * LIST_LIMIT)
    labels = labels_for(lang)
    charts = []
    for t in stats.tables:
        names = dict(labels.get(t.dimension, {}))
        charts.append({"id": t.dimension, "dimension": t.dimension, "title": CHART_TITLES[t.dimension],
                       "heading": CATEGORY_HEADINGS[t.dimension], "table": t, "chart": bar_chart(t, names),
                       "caption": N_("Bars: number of incidents. A dashed box: fewer than 10, or hidden.")})
        if t.dimension == "sector":  # the same table, measured in people
            charts.append({"id": "sector-people", "dimension": t.dimension, "title": CHART_TITLES["sector-people"],
                           "heading": CATEGORY_HEADINGS[t.dimension], "table": t,
                           "chart": bar_chart(t, names, "people"),
                           "caption": N_("Bars: number of people affected. A dashed box: hidden (fewer than 10 "
                                         "incidents or people).")})
    return render(request, "leaks_transparency.html", principal=principal, lang=lang, active="leaks-transparency",
                  stats=stats, charts=charts, listing=listing, labels=labels, sector=chosen or "",
                  sectors=SECTORS, page=page, page_size=LIST_LIMIT,
                  status=422 if sector and chosen is None else 200)


__all__ = ["router"]
