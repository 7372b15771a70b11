"""The AI systems register's shapes (issue 7): what :mod:`qorgau.aisystems.register` returns to the API, the
web pages and the CLI. Plain frozen dataclasses with ``to_dict()`` (JSON-able, stable keys).

Questionnaire answers are the operator's own statements about a system (no personal data is asked for), but
they stay out of ``repr`` anyway: a ``repr`` ends up in logs, and only the public register shows facts — and
only those the catalogue marks ``public: true``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class FactView:
    """One question of the questionnaire (a fact of ``qorgau/rules/facts.yaml``), in one language."""

    path: str
    type: str
    values: tuple[str, ...]
    question: str
    help: str | None
    required: bool
    public: bool

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "values": list(self.values), "question": self.question,
                "help": self.help, "required": self.required, "public": self.public}


@dataclass(frozen=True)
class FactGroupView:
    """A questionnaire section."""

    id: str
    title: str
    facts: tuple[FactView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "facts": [f.to_dict() for f in self.facts]}


@dataclass(frozen=True)
class ClassificationView:
    """A classification of a system by the rule packs (stored, or a preview with ``id``/``seq`` None).

    Each finding in ``prohibitions``/``obligations``/``notices``/``risk_reasons``/``autonomy_reasons``/
    ``autonomy_violations`` is a dict: rule_id, pack_id, citation {law, article, paragraph, legal_id}, status,
    title {kk, ru, en}, explanation {kk, ru, en}, effect; obligations add ``due_on`` (ISO date or None),
    ``obligation_status`` (open | relaxed) and ``sandbox_id``. ``missing_facts`` items: path, question {kk, ru,
    en}, required (the questionnaire requires it), decides (rule ids it would decide).
    """

    id: int | None
    system_id: int
    seq: int | None
    as_of: date
    profile_version: int
    risk_level: str | None
    autonomy_level: str | None
    prohibited: bool
    prohibitions: list[dict[str, Any]]
    autonomy_violations: list[dict[str, Any]]
    obligations: list[dict[str, Any]]
    notices: list[dict[str, Any]]
    risk_reasons: list[dict[str, Any]]
    autonomy_reasons: list[dict[str, Any]]
    missing_facts: list[dict[str, Any]]
    undecided: list[dict[str, Any]]
    packs: list[dict[str, Any]]
    packs_digest: str
    profiles: list[str]
    diff: dict[str, Any]
    trigger: str
    created_at: datetime | None
    created_by: str | None
    persisted: bool = True
    #: False when no risk rule was in force on ``as_of`` (the AI law not yet): risk and autonomy are None
    law_in_force: bool = True

    def __repr__(self) -> str:
        return (f"ClassificationView(id={self.id}, system={self.system_id}, seq={self.seq}, as_of={self.as_of}, "
                f"risk={self.risk_level!r}, autonomy={self.autonomy_level!r}, prohibited={self.prohibited})")

    @property
    def decided(self) -> bool:
        """True when nothing is missing to decide the risk level and autonomy."""
        return self.risk_level is not None and self.autonomy_level is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "system_id": self.system_id, "seq": self.seq, "as_of": _iso(self.as_of),
            "profile_version": self.profile_version, "risk_level": self.risk_level,
            "autonomy_level": self.autonomy_level, "prohibited": self.prohibited,
            "prohibitions": self.prohibitions, "autonomy_violations": self.autonomy_violations,
            "obligations": self.obligations, "notices": self.notices, "risk_reasons": self.risk_reasons,
            "autonomy_reasons": self.autonomy_reasons, "missing_facts": self.missing_facts,
            "undecided": self.undecided, "packs": self.packs, "packs_digest": self.packs_digest,
            "profiles": self.profiles, "diff": self.diff, "trigger": self.trigger,
            "created_at": _iso(self.created_at), "created_by": self.created_by, "persisted": self.persisted,
            "law_in_force": self.law_in_force,
        }


@dataclass(frozen=True)
class ObligationView:
    """A duty a classification put on a system, with its rule's citation and title."""

    id: int
    system_id: int
    system_code: str
    rule_id: str
    code: str
    status: str
    due_on: date | None
    overdue: bool
    classification_id: int
    sandbox_id: int | None
    title: dict[str, str]
    citation: dict[str, Any]
    created_at: datetime
    met_at: datetime | None
    met_by: str | None
    evidence: str | None

    def __repr__(self) -> str:
        return (f"ObligationView(id={self.id}, system={self.system_id}, code={self.code!r}, "
                f"status={self.status!r}, due_on={self.due_on})")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "system_id": self.system_id, "system_code": self.system_code,
                "rule_id": self.rule_id, "code": self.code, "status": self.status, "due_on": _iso(self.due_on),
                "overdue": self.overdue, "classification_id": self.classification_id,
                "sandbox_id": self.sandbox_id, "title": self.title, "citation": self.citation,
                "created_at": _iso(self.created_at), "met_at": _iso(self.met_at), "met_by": self.met_by,
                "evidence": self.evidence}


@dataclass(frozen=True)
class SystemRecord:
    """A registered system: its register entry (questionnaire answers), current classification and
    obligations. ``profile_version`` is None for a system registered only through oversight (no questionnaire
    yet). ``webhook_secret`` is set only in :meth:`AiRegister.register_system`'s answer (shown once)."""

    id: int
    code: str
    name: str
    description: str | None
    status: str
    risk_class: str
    autonomy: str
    classified_by: str
    webhook_url: str | None
    register_id: str | None
    public: bool
    state_system: bool
    sector: str | None
    facts: dict[str, Any]
    profile_version: int | None
    classification: ClassificationView | None
    obligations: list[ObligationView]
    created_at: datetime
    updated_at: datetime
    webhook_secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"SystemRecord(id={self.id}, code={self.code!r}, register_id={self.register_id!r}, "
                f"risk={self.risk_class!r}, autonomy={self.autonomy!r}, status={self.status!r}, "
                f"version={self.profile_version})")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "name": self.name, "description": self.description,
                "status": self.status, "risk_class": self.risk_class, "autonomy": self.autonomy,
                "classified_by": self.classified_by, "webhook_url": self.webhook_url,
                "register_id": self.register_id, "public": self.public, "state_system": self.state_system,
                "sector": self.sector, "facts": dict(self.facts), "version": self.profile_version,
                "classification": self.classification.to_dict() if self.classification else None,
                "obligations": [o.to_dict() for o in self.obligations], "created_at": _iso(self.created_at),
                "updated_at": _iso(self.updated_at)}


@dataclass(frozen=True)
class SystemSummary:
    """A row of the operator's list of systems."""

    id: int
    code: str
    name: str
    status: str
    register_id: str | None
    sector: str | None
    public: bool
    risk_level: str | None       # the current classification's (None: undecided or never classified)
    autonomy_level: str | None
    risk_class: str              # what oversight uses (classified, or declared)
    autonomy: str
    classified_by: str
    prohibited: bool
    missing_facts: int
    open_obligations: int
    overdue_obligations: int
    classified_on: date | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "name": self.name, "status": self.status,
                "register_id": self.register_id, "sector": self.sector, "public": self.public,
                "risk_level": self.risk_level, "autonomy_level": self.autonomy_level,
                "risk_class": self.risk_class, "autonomy": self.autonomy, "classified_by": self.classified_by,
                "prohibited": self.prohibited, "missing_facts": self.missing_facts,
                "open_obligations": self.open_obligations, "overdue_obligations": self.overdue_obligations,
                "classified_on": _iso(self.classified_on)}


@dataclass(frozen=True)
class PublicSystemView:
    """A system as the public register shows it: no questionnaire answer unless its fact is ``public: true``."""

    register_id: str
    operator_name: str
    operator_bin: str
    name: str
    purpose: str | None
    sector: str | None
    state_system: bool
    status: str
    risk_level: str | None
    autonomy_level: str | None
    prohibited: bool
    prohibited_practices: list[dict[str, Any]]   # [{rule_id, title {kk, ru, en}}]
    obligations: list[dict[str, Any]]            # [{code, status}]
    trusted_status: str | None                   # the newest trusted-list entry's status, or None
    sandboxes: list[dict[str, Any]]              # [{application_id, status, ends_on}] approved and not ended
    public_facts: dict[str, Any]
    classified_on: date | None
    packs: list[dict[str, Any]]                  # [{id, version}]
    packs_digest: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"register_id": self.register_id, "operator_name": self.operator_name,
                "operator_bin": self.operator_bin, "name": self.name, "purpose": self.purpose,
                "sector": self.sector, "state_system": self.state_system, "status": self.status,
                "risk_level": self.risk_level, "autonomy_level": self.autonomy_level,
                "prohibited": self.prohibited, "prohibited_practices": self.prohibited_practices,
                "obligations": self.obligations, "trusted_status": self.trusted_status,
                "sandboxes": self.sandboxes, "public_facts": dict(self.public_facts),
                "classified_on": _iso(self.classified_on), "packs": self.packs, "packs_digest": self.packs_digest}


@dataclass(frozen=True)
class PublicPage:
    items: list[PublicSystemView]
    total: int
    limit: int
    offset: int

    def to_dict(self) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in self.items], "total": self.total, "limit": self.limit,
                "offset": self.offset}


@dataclass(frozen=True)
class ReclassifyReport:
    """What :meth:`AiRegister.reclassify_if_packs_changed` did: the pack versions it saw for the first time,
    how many systems it re-classified, and each re-classification's diff (empty: same result)."""

    changed: bool
    new_versions: list[dict[str, str]]           # [{id, version, digest}]
    packs_digest: str
    reclassified: int
    changed_systems: int
    errors: int
    systems: list[dict[str, Any]]                # [{organization_id, system_id, code, classification_id, diff}]

    def to_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "new_versions": self.new_versions, "packs_digest": self.packs_digest,
                "reclassified": self.reclassified, "changed_systems": self.changed_systems, "errors": self.errors,
                "systems": self.systems}


__all__ = ["ClassificationView", "FactGroupView", "FactView", "ObligationView", "PublicPage", "PublicSystemView",
           "ReclassifyReport", "SystemRecord", "SystemSummary"]
