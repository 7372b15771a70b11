"""The public AI systems register and the law as code, for everyone — no login (issue 7).

``/public/ai-systems`` lists the systems operators made public (state systems are public by default): operator,
purpose, sector, risk level, autonomy, prohibited practices found, obligations, trusted-list status, sandbox
membership and only the questionnaire's facts the catalogue marks ``public: true``. ``.csv`` is the same as
open data, streamed. ``/public/trusted-systems`` lists the systems the regulator included in trusted lists
(L-AI-TRUSTED). ``/public/rules`` publishes the rule packs the classification runs on, with citations.

Sessions here are platform-level (the register spans every operator); the services return public rows only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, StreamingResponse

from ...aisystems.governance import governance_for
from ...aisystems.register import register_for
from ...core.errors import NotFound
from ...core.platform import Platform
from ...rules import rulebook
from ..deps import PlatformDep
from ..schemas_aisystems import RiskLevel, out

router = APIRouter(tags=["public register"])

RegisterId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$",
                                 description="The public register number (KZ-AI-2026-000042).")]
RuleId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[a-z0-9.-]+$", description="A rule's id.")]
Sector = Annotated[str | None, Query(max_length=64, description="Only this sector (system.sector).")]
Risk = Annotated[RiskLevel | None, Query(description="Only this risk level.")]
Words = Annotated[str | None, Query(max_length=200, description="Words of the system's or operator's name.")]
OperatorBin = Annotated[str | None, Query(pattern=r"^\d{12}$", description="Only this operator (its BIN).")]


@router.get("/public/ai-systems", summary="The public register of AI systems (no login)")
def public_register(platform: PlatformDep, sector: Sector = None, risk: Risk = None, q: Words = None,
                    operator_bin: OperatorBin = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> JSONResponse:
    with platform.db.reader() as s:
        return out(register_for(platform).public_register(s, sector=sector, risk=risk, q=q,
                                                          operator_bin=operator_bin, limit=limit, offset=offset))


@router.get("/public/ai-systems.csv", summary="The public register as open data (CSV, UTF-8, streamed)",
            response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
def public_register_csv(platform: PlatformDep, sector: Sector = None, risk: Risk = None, q: Words = None,
                        operator_bin: OperatorBin = None) -> StreamingResponse:
    filters = {"sector": sector, "risk": risk, "q": q, "operator_bin": operator_bin}
    with platform.db.reader() as s:
        register_for(platform).public_csv(s, **filters)  # bad filters are a 422 now, not a broken stream later
    return StreamingResponse(_csv(platform, filters), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="ai-systems.csv"'})


def _csv(platform: Platform, filters: dict[str, Any]) -> Iterator[bytes]:
    # The session lives as long as the stream: rows are read as they are sent, never all held in memory.
    with platform.db.reader() as s:
        for line in register_for(platform).public_csv(s, **filters):
            yield line.encode("utf-8")


@router.get("/public/ai-systems/{register_id}", summary="One system of the public register")
def public_system(register_id: RegisterId, platform: PlatformDep) -> JSONResponse:
    with platform.db.reader() as s:
        return out(register_for(platform).public_system(s, register_id))


@router.get("/public/trusted-systems", summary="Systems included in the sectors' lists of trusted systems "
                                               "(L-AI-TRUSTED)")
def trusted_systems(platform: PlatformDep, sector: Sector = None) -> JSONResponse:
    with platform.db.reader() as s:
        # The public shape: no internal ids of who requested or decided, no reasons.
        return out([entry.to_public_dict() for entry in governance_for(platform).trusted_list(s, sector=sector)])


@router.get("/public/rules", summary="The law as code: every rule pack with its rules, citations, conditions, "
                                     "effects and periods in force")
def rules() -> JSONResponse:
    return out(rulebook().export())


@router.get("/public/rules/{rule_id}", summary="One rule of the packs, with its citation")
def rule(rule_id: RuleId) -> JSONResponse:
    book = rulebook()
    found = book.rule(rule_id)  # NotFound for an unknown id
    for pack in book.export().get("packs", []):
        for item in pack.get("rules", []):
            if item.get("id") == found.id:
                return out({**item, "pack": {k: v for k, v in pack.items() if k != "rules"}})
    raise NotFound("no such rule", field="rule_id")


__all__ = ["router"]
