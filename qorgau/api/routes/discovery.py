"""Discovery over HTTP: find personal data in a text (L-PD-SPLIT categories on every finding).

The text is scanned in memory and forgotten: it is not stored, logged or echoed back; findings carry
offsets, never the matched values.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ...core.auth import Role
from ..deps import Context, requires
from ..schemas import Strict

router = APIRouter(tags=["discovery"])
ScanCtx = Annotated[Context, Depends(requires(Role.ADMIN, Role.DPO, Role.REVIEWER, Role.REGULATOR))]
MAX_SCAN_CHARS = 1_000_000


class ScanRequest(Strict):
    # Offsets refer to the text exactly as sent: no whitespace stripping here.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    text: str = Field(max_length=MAX_SCAN_CHARS, description="The text to scan (not stored, not logged).")
    types: list[str] | None = Field(default=None, max_length=50, description="Only these entity types.")
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    identifiers_only: bool = Field(default=False, description="Skip PERSON/ADDRESS/DATE_OF_BIRTH (faster).")
    explain: bool = Field(default=False, description="Include why each finding got its score.")


class FindingOut(BaseModel):
    type: str
    start: int
    end: int
    score: float
    category: str
    recognizer: str
    explanation: dict[str, Any] | None = None


class ScanResponse(BaseModel):
    findings: list[FindingOut]
    counts: dict[str, int]
    categories: dict[str, int]


_lock = threading.Lock()


def shared_scanner(request: Request, identifiers_only: bool) -> Any:
    """Scanners are expensive to build (lexicons, NER model): one per app and kind, built on first use."""
    from ...discovery.engine import Scanner

    cache: dict[bool, Any] = request.app.state.__dict__.setdefault("scanners", {})
    if identifiers_only not in cache:
        with _lock:
            if identifiers_only not in cache:
                base = Scanner.identifiers_only() if identifiers_only else Scanner.default()
                cache[identifiers_only] = Scanner(base.recognizers, min_score=0.0)
    return cache[identifiers_only]


@router.post("/scan", response_model=ScanResponse, response_model_exclude_none=True,
             summary="Find personal data in a text (offsets, types, scores, categories)")
def scan_text(body: ScanRequest, request: Request, ctx: ScanCtx) -> ScanResponse:
    findings = [f for f in shared_scanner(request, body.identifiers_only).scan(body.text)
                if f.score >= body.min_score and (body.types is None or f.type in body.types)]
    out = [FindingOut(**f.to_dict(explain=body.explain)) for f in findings]
    return ScanResponse(findings=out, counts=dict(Counter(f.type for f in findings)),
                        categories=dict(Counter(f.category for f in findings)))
