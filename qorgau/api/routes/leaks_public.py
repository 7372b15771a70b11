"""The leak register's open data, for everyone — no login (issue 8; L-PD-LEAK-REGISTER).

* ``GET /public/leaks/statistics`` — incidents and people affected by sector, data class, month and nature, with
  small cells suppressed (``null`` + ``"suppressed": true``) and secondary suppression against totals;
* ``GET /public/leaks/statistics.csv`` — the same as CSV open data (one row per dimension and category);
* ``GET /public/leaks/incidents`` (and ``.csv``) — the published incidents above the size threshold, people
  affected rounded.

Only **published** incidents the authorized body did not find fabricated, at or above
``settings.leaks_public_min_people``, ever appear (:mod:`qorgau.leaks.transparency`). Nothing here answers
whether an identifier leaked: there is no identifier parameter on any of these routes.

CSV encoding: UTF-8 **with** a byte-order mark by default (spreadsheets in kk/ru locales need it to read the
Cyrillic labels); ``?bom=false`` for tools that do not want it. Columns are documented in
``docs/leaks-transparency.md``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from ...leaks.transparency import MAX_PUBLIC_LIMIT, transparency_for
from ...leaks.models import SECTORS
from ..deps import PlatformDep
from ..schemas_aisystems import out

router = APIRouter(tags=["public leak register"])

Sector = Annotated[Literal[SECTORS] | None, Query(description="Only this sector.")]  # type: ignore[valid-type]
Bom = Annotated[bool, Query(description="Start the CSV with a UTF-8 byte-order mark (default true).")]
# Open data changes when the regulator publishes: a short public cache is fine.
_CACHE = {"Cache-Control": "public, max-age=300"}


@router.get("/public/leaks/statistics", summary="Leak statistics: published incidents by sector, data class, "
                                                "month and nature, small cells suppressed (no login)")
def statistics(platform: PlatformDep) -> JSONResponse:
    with platform.db.reader() as s:
        stats = transparency_for(platform).statistics(s)
    return out(stats.to_dict(), headers=_CACHE)


@router.get("/public/leaks/statistics.csv", summary="Leak statistics as CSV open data (UTF-8)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def statistics_csv(platform: PlatformDep, bom: Bom = True) -> Response:
    service = transparency_for(platform)
    with platform.db.reader() as s:
        text = service.statistics_csv(service.statistics(s), bom=bom)
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={**_CACHE, "Content-Disposition": 'attachment; filename="leak-statistics.csv"'})


@router.get("/public/leaks/incidents", summary="Published leak incidents above the size threshold (no login)")
def incidents(platform: PlatformDep, sector: Sector = None,
              limit: Annotated[int, Query(ge=1, le=MAX_PUBLIC_LIMIT)] = 100,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> JSONResponse:
    with platform.db.reader() as s:
        page = transparency_for(platform).published_incidents(s, sector=sector, limit=limit, offset=offset)
    return out(page.to_dict(), headers=_CACHE)


@router.get("/public/leaks/incidents.csv", summary="Published leak incidents as CSV open data (UTF-8)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def incidents_csv(platform: PlatformDep, sector: Sector = None, bom: Bom = True) -> Response:
    with platform.db.reader() as s:
        text = transparency_for(platform).incidents_csv(s, sector=sector, bom=bom)
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={**_CACHE, "Content-Disposition": 'attachment; filename="leak-incidents.csv"'})


__all__ = ["router"]
