"""Request bodies and small helpers shared by the AI systems register's routes (operator, regulator, public).

Responses are the services' ``to_dict()`` sent as is (:func:`out`), the way the oversight routes do it: the
shapes are stated once, in :mod:`qorgau.aisystems.register` and :mod:`qorgau.aisystems.governance`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import Field, field_validator

from ..aisystems.models import AUDIT_RESULTS, OBLIGATION_STATUSES, RISK_CLASSES, SANDBOX_STATUSES, TRUSTED_STATUSES
from .schemas import MAX_ID, Strict

Lang = Literal["kk", "ru", "en"]
RiskLevel = Literal["minimal", "medium", "high"]
ProfileName = Literal["law", "stricter"]
ObligationStatus = Literal["open", "met", "relaxed", "void"]
TrustedStatus = Literal["requested", "included", "refused", "removed"]
AuditResult = Literal["passed", "failed"]
SandboxStatus = Literal["submitted", "approved", "rejected", "withdrawn", "closed"]
assert set(RiskLevel.__args__) == set(RISK_CLASSES)  # type: ignore[attr-defined]
assert set(ObligationStatus.__args__) == set(OBLIGATION_STATUSES)  # type: ignore[attr-defined]
assert set(TrustedStatus.__args__) == set(TRUSTED_STATUSES)  # type: ignore[attr-defined]
assert set(AuditResult.__args__) == set(AUDIT_RESULTS)  # type: ignore[attr-defined]
assert set(SandboxStatus.__args__) == set(SANDBOX_STATUSES)  # type: ignore[attr-defined]

MAX_FACTS_DEPTH = 6  # namespace.name is two levels; a little room for the packs helper's future facts
SHA256_PATTERN = r"^[0-9a-f]{64}$"


def _check_facts(value: Any, depth: int = 0, path: str = "facts") -> None:
    """Answers are plain JSON: no NaN or infinity, bounded nesting. Which paths and values are valid is the
    register's business (it names ``facts.<path>``)."""
    if depth > MAX_FACTS_DEPTH:
        raise ValueError(f"nested deeper than {MAX_FACTS_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    if isinstance(value, Mapping):
        for item in value.values():
            _check_facts(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_facts(item, depth + 1)


class FactsBody(Strict):
    @field_validator("facts", check_fields=False)
    @classmethod
    def _plain(cls, v: Any) -> Any:
        _check_facts(v)
        return v


class SystemRegistration(FactsBody):
    """A new AI system with its questionnaire answers (``facts``: nested ``{"functions": {"…": true}}`` or flat
    ``{"functions.emotion_recognition": true}``, keyed by the fact paths of ``GET /ai-register/questionnaire``)."""

    code: str = Field(min_length=1, max_length=64, description="Your stable handle for it (scoring-v2).")
    name: str = Field(min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=5000)
    facts: dict[str, Any] = Field(description="The questionnaire's answers; unanswered facts may be left out.")
    public: bool | None = Field(default=None, description="Show it in the public register (default: state "
                                                         "systems yes, others no).")
    webhook_url: str | None = Field(default=None, max_length=2000, description="Where decided outcomes are POSTed.")


class QuestionnaireUpdate(FactsBody):
    facts: dict[str, Any] = Field(description="Answers to change: merged into the stored ones, null clears one.")
    public: bool | None = None
    expected_version: int | None = Field(default=None, ge=1, le=MAX_ID,
                                         description="The questionnaire version you edited (409 if it changed).")


class ObligationMet(Strict):
    evidence: str = Field(min_length=1, max_length=2000,
                          description="A reference to the evidence (document number, URL) — not personal data.")


class AuditIn(Strict):
    """An audit of a high-risk system (L-AI-TRUSTED): the evidence a trusted-list request needs."""

    auditor: str = Field(min_length=1, max_length=300)
    audited_on: date
    covers_training_data: bool
    prohibited_functionality_found: bool
    result: AuditResult
    summary: str | None = Field(default=None, max_length=10_000)
    report_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN, description="SHA-256 of the report.")


class TrustedRequestIn(Strict):
    sector: str = Field(min_length=1, max_length=64)
    audit_id: int = Field(ge=1, le=MAX_ID, description="A passed audit of this system.")


class SandboxApplicationIn(Strict):
    """An application to the regulatory sandbox (L-AI-SANDBOX [plan])."""

    title: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=10_000)
    system_ids: list[int] = Field(min_length=1, max_length=100)
    requested_relaxations: list[str] = Field(default_factory=list, max_length=100,
                                             description="Ids of obligation rules marked relaxable.")

    @field_validator("system_ids")
    @classmethod
    def _ids(cls, v: list[int]) -> list[int]:
        if any(i < 1 or i > MAX_ID for i in v):
            raise ValueError("not a system id")
        return v

    @field_validator("requested_relaxations")
    @classmethod
    def _rule_ids(cls, v: list[str]) -> list[str]:
        if any(not (0 < len(r) <= 128) for r in v):
            raise ValueError("not a rule id")
        return v


class TrustedDecisionIn(Strict):
    include: bool
    reason: str | None = Field(default=None, max_length=10_000)


class TrustedRemovalIn(Strict):
    reason: str = Field(min_length=1, max_length=10_000)


class SandboxDecisionIn(Strict):
    approve: bool
    starts_on: date | None = None
    ends_on: date | None = Field(default=None, description="Required when approving; at most 24 months on.")
    conditions: str | None = Field(default=None, max_length=10_000)
    granted_relaxations: list[str] | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=10_000)


class SandboxClosureIn(Strict):
    reason: str = Field(min_length=1, max_length=10_000)


def jsonable(value: Any) -> Any:
    """``to_dict()`` of a service view, recursively through lists, tuples and mappings; dates as ISO text."""
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return value


def out(value: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(jsonable(value), status_code=status_code, headers=headers)
