"""The organization's maturity index (L-AI-MATURITY [plan]; DC Art.95 has a Digital Development Index for state
bodies [text]): how well an operator actually runs what the PD law and the AI law ask of it, measured from the
platform's own registers, 0–100.

The formula (``MATURITY_FORMULA``, version ``FORMULA_VERSION``) is a weighted mean of shares. Each component
is a share ``numerator / denominator`` of things that *could be judged* on the day ``on``; a component with
nothing to judge (0/0) is left out and the other weights are renormalized, so an operator is neither rewarded
nor punished for a register it has no entries in. Components (weights sum to 1):

=================================  ======  =======================================================================
code                               weight  numerator / denominator
=================================  ======  =======================================================================
``ai_systems_classified``          0.20    AI systems whose current classification has no missing facts /
                                           AI systems (not retired) registered by ``on`` (L-AI-RISK)
``ai_obligations_on_time``         0.20    obligations met by their due date / obligations met, plus those still
                                           open after their due date (relaxed and void ones are left out;
                                           open ones not yet due are not judged) (L-AI-DUTIES)
``consents_complete``              0.15    consents whose Art.8 p.4 record is complete / consents given by ``on``
                                           (L-PD-CONSENT-FIELDS; see :func:`consent_complete`)
``objections_on_time``             0.15    objections decided within 3 working days (by their due date) /
                                           objections decided, plus those still open after their due date
                                           (L-PD-AUTO)
``decisions_reviewed_on_time``     0.15    decisions held for a human that a human decided before the review
                                           deadline / such decisions that are final, plus those still open past
                                           their deadline (L-AI-DECISION)
``incidents_reported_on_time``     0.15    incidents notified within 1 working day / incidents (L-PD-BREACH) —
                                           excluded (0/0) until the leak register exists
=================================  ======  =======================================================================

``score = round(100 × Σ wᵢ·vᵢ / Σ wᵢ, 1)`` over the included components (``vᵢ = numeratorᵢ / denominatorᵢ``);
no included component → no score (``None``).

Everything is judged *as of the end of the day* ``on`` (Asia/Almaty), or now if that is earlier: rows created
later are not counted, and a thing done later counts as not done yet. Statuses that can only be read as they
are now (an obligation's ``void``/``relaxed``) are taken as they are now.

Other modules' data: consents are read through :meth:`qorgau.consent.service.ConsentService.list_consents`.
The oversight module has no read function for "objections decided within 3 working days" or "decisions
reviewed before the deadline" over all rows (``objections()`` stops at 1,000 rows), so two small read-only
queries over its tables live here, marked **READ-ONLY QUERY OVER ANOTHER MODULE'S TABLES** — they never
write, and should move into ``qorgau/oversight/service.py`` when that module grows such read functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.calendar import ALMATY, local_date
from ..core.db import utcnow
from .models import AiClassification, AiObligation, AiSystem

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = ["COMPONENTS", "FORMULA_VERSION", "MATURITY_FORMULA", "ComponentSpec", "MaturityComponent",
           "MaturityView", "compute_maturity", "consent_complete", "day_end"]

FORMULA_VERSION = "2026.1"


@dataclass(frozen=True)
class ComponentSpec:
    code: str
    weight: float
    legal_id: str
    title: dict[str, str]


COMPONENTS: tuple[ComponentSpec, ...] = (
    ComponentSpec("ai_systems_classified", 0.20, "L-AI-RISK", {
        "kk": "Барлық деректері толық жіктелген ЖИ жүйелері",
        "ru": "Системы ИИ, классифицированные без недостающих сведений",
        "en": "AI systems classified with no missing facts"}),
    ComponentSpec("ai_obligations_on_time", 0.20, "L-AI-DUTIES", {
        "kk": "Мерзімінде орындалған ЖИ міндеттері",
        "ru": "Обязанности по системам ИИ, исполненные в срок",
        "en": "AI obligations met on time"}),
    ComponentSpec("consents_complete", 0.15, "L-PD-CONSENT-FIELDS", {
        "kk": "8-баптың 4-тармағы бойынша толық келісімдер",
        "ru": "Согласия с полным набором сведений ст. 8 п. 4",
        "en": "Consents with complete Art. 8 p. 4 fields"}),
    ComponentSpec("objections_on_time", 0.15, "L-PD-AUTO", {
        "kk": "3 жұмыс күні ішінде шешілген қарсылықтар",
        "ru": "Возражения, рассмотренные в течение 3 рабочих дней",
        "en": "Objections decided within 3 working days"}),
    ComponentSpec("decisions_reviewed_on_time", 0.15, "L-AI-DECISION", {
        "kk": "Мерзімге дейін адам қараған ЖИ шешімдері",
        "ru": "Решения ИИ, проверенные человеком до срока",
        "en": "AI decisions reviewed by a human before the deadline"}),
    ComponentSpec("incidents_reported_on_time", 0.15, "L-PD-BREACH", {
        "kk": "Мерзімінде хабарланған инциденттер",
        "ru": "Инциденты, о которых сообщено в срок",
        "en": "Incidents reported on time"}),
)

INCIDENTS_NOTE = ("the leak register (L-PD-BREACH, L-PD-LEAK-REGISTER) is not built yet: no incidents to "
                  "judge, component excluded")

MATURITY_FORMULA = (
    f"maturity index, formula {FORMULA_VERSION}: score = round(100 * sum(w_i * v_i) / sum(w_i), 1) over the "
    "components with a non-zero denominator, v_i = numerator_i / denominator_i; a 0/0 component is excluded and "
    "the remaining weights renormalized; no component with data -> no score. Components and weights: "
    + "; ".join(f"{c.code} {c.weight:.2f} ({c.legal_id})" for c in COMPONENTS)
    + ". Judged as of the end of the day (Asia/Almaty) or now, whichever is earlier."
)


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class MaturityComponent:
    """One component of the index. ``value`` is None and ``included`` False for a 0/0 component;
    ``effective_weight`` is the weight after renormalization (0 when excluded)."""

    code: str
    title: dict[str, str]
    legal_id: str
    weight: float
    effective_weight: float
    value: float | None
    numerator: int
    denominator: int
    included: bool
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "title": dict(self.title), "legal_id": self.legal_id, "weight": self.weight,
                "effective_weight": self.effective_weight, "value": self.value, "numerator": self.numerator,
                "denominator": self.denominator, "included": self.included, "note": self.note}


@dataclass(frozen=True)
class MaturityView:
    """The index of one organization on one day. ``score`` is None when no component has data."""

    organization_id: int
    computed_on: date
    score: float | None
    formula_version: str
    components: list[MaturityComponent]
    stored: bool = False  # True when returned by snapshot_maturity and kept as that day's snapshot

    def component(self, code: str) -> MaturityComponent:
        for c in self.components:
            if c.code == code:
                return c
        raise KeyError(code)

    def breakdown(self) -> dict[str, Any]:
        return {"formula_version": self.formula_version, "score": self.score,
                "components": [c.to_dict() for c in self.components]}

    def to_dict(self) -> dict[str, Any]:
        return {"organization_id": self.organization_id, "computed_on": _iso(self.computed_on),
                "score": self.score, "formula_version": self.formula_version,
                "formula": MATURITY_FORMULA, "components": [c.to_dict() for c in self.components],
                "stored": self.stored}


def day_end(day: date) -> datetime:
    """The first instant after the Kazakhstan calendar day ``day`` (Asia/Almaty), timezone-aware."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ALMATY)


# --- the components ----------------------------------------------------------------------------------


def _systems_classified(session: Session, ref: datetime) -> tuple[int, int]:
    systems = [sid for sid, in session.execute(
        select(AiSystem.id).where(AiSystem.status != "retired", AiSystem.created_at < ref))]
    if not systems:
        return 0, 0
    current: dict[int, tuple[int, list[Any]]] = {}
    for sid, seq, missing in session.execute(
            select(AiClassification.ai_system_id, AiClassification.seq, AiClassification.missing_facts)
            .where(AiClassification.ai_system_id.in_(systems), AiClassification.created_at < ref)):
        if sid not in current or seq > current[sid][0]:
            current[sid] = (seq, list(missing or []))
    done = sum(1 for sid in systems if sid in current and not current[sid][1])
    return done, len(systems)


def _obligations_on_time(session: Session, ref: datetime, on: date) -> tuple[int, int]:
    num = den = 0
    for status, due_on, met_at in session.execute(
            select(AiObligation.status, AiObligation.due_on, AiObligation.met_at)
            .where(AiObligation.status.in_(("open", "met")), AiObligation.created_at < ref)):
        met = status == "met" and met_at is not None and met_at < ref
        if met:
            den += 1
            if due_on is None or local_date(met_at) <= due_on:
                num += 1
        elif due_on is not None and due_on < on:
            den += 1  # still open after its due date: late
    return num, den


def consent_complete(consent: Any) -> bool:
    """A consent's record is complete under Art.8 p.4 as qorgau can check it (L-PD-CONSENT-FIELDS):

    (1) the operator is the organization itself (always); (2) the subject's full name is sealed in the vault
    and is not checked here; (3) the term — none means "until the purpose is achieved", which the law allows;
    (4) a transfer to third parties names at least one recipient; (5) a cross-border transfer names its
    countries; (6) public sources is a yes/no the service always records; (7) the list of data is not empty;
    and the operator can prove the consent (Art.25, part of L-PD-CONSENT-FIELDS in LEGAL.md): an evidence
    reference or the document's SHA-256 is recorded.
    """
    if not consent.data_categories:
        return False
    if consent.third_party_transfer and not consent.counterparty_ids:
        return False
    if consent.cross_border and not consent.countries:
        return False
    return bool(consent.evidence_ref or consent.evidence_sha256)


def _consents_complete(platform: Platform, session: Session, ref: datetime) -> tuple[int, int]:
    from ..consent.service import consent_for  # the consent module's own read function

    service = consent_for(platform)
    num = den = 0
    before: int | None = None
    while True:
        page = service.list_consents(session, limit=1000, before=before)
        for consent in page:
            if consent.given_at < ref:
                den += 1
                num += consent_complete(consent)
        if len(page) < 1000:
            return num, den
        before = page[-1].id


def _objections_on_time(session: Session, ref: datetime, on: date) -> tuple[int, int]:
    """READ-ONLY QUERY OVER ANOTHER MODULE'S TABLES (oversight_objections): objections decided by their due
    date (3 working days, L-PD-AUTO) / objections decided, plus open ones past their due date."""
    from ..oversight.models import OBJECTION_OPEN, DecisionObjection

    num = den = 0
    for status, due_on, decided_at in session.execute(
            select(DecisionObjection.status, DecisionObjection.due_on, DecisionObjection.decided_at)
            .where(DecisionObjection.filed_at < ref)):
        decided = status != OBJECTION_OPEN and decided_at is not None and decided_at < ref
        if decided:
            den += 1
            if local_date(decided_at) <= due_on:
                num += 1
        elif due_on < on:
            den += 1
    return num, den


def _decisions_reviewed_on_time(session: Session, ref: datetime) -> tuple[int, int]:
    """READ-ONLY QUERY OVER ANOTHER MODULE'S TABLES (oversight_decisions): decisions held for a human (path
    ``review``) that a person approved, amended or rejected no later than the review deadline / such decisions
    that are final (a deadline rejection or time-out is final and late), plus open ones past their deadline.
    After an escalation the deadline is the senior reviewers' one."""
    from ..oversight.models import AMENDED, APPROVED, PATH_REVIEW, REJECTED, AiDecision
    from ..oversight.service import DEADLINE_ACTOR

    num = den = 0
    for status, deadline_at, decided_at, decided_by in session.execute(
            select(AiDecision.status, AiDecision.deadline_at, AiDecision.decided_at, AiDecision.decided_by)
            .where(AiDecision.path == PATH_REVIEW, AiDecision.submitted_at < ref)):
        if decided_at is not None and decided_at < ref:
            den += 1
            if (status in (APPROVED, AMENDED, REJECTED) and decided_by != DEADLINE_ACTOR
                    and (deadline_at is None or decided_at <= deadline_at)):
                num += 1
        elif deadline_at is not None and deadline_at < ref:
            den += 1
    return num, den


def compute_maturity(platform: Platform, session: Session, organization_id: int, on: date, *,
                     now: datetime | None = None) -> MaturityView:
    """The index of the session's organization as of ``on`` (see the module docstring). ``now`` (default: the
    clock) is the instant things are judged at when ``on`` is today; batch recomputations and tests pass it."""
    ref = min(day_end(on), now or utcnow())
    counts: dict[str, tuple[int, int]] = {
        "ai_systems_classified": _systems_classified(session, ref),
        "ai_obligations_on_time": _obligations_on_time(session, ref, on),
        "consents_complete": _consents_complete(platform, session, ref),
        "objections_on_time": _objections_on_time(session, ref, on),
        "decisions_reviewed_on_time": _decisions_reviewed_on_time(session, ref),
        "incidents_reported_on_time": (0, 0),
    }
    included_weight = sum(c.weight for c in COMPONENTS if counts[c.code][1] > 0)
    components: list[MaturityComponent] = []
    total = 0.0
    for spec in COMPONENTS:
        num, den = counts[spec.code]
        included = den > 0
        value = num / den if included else None
        effective = spec.weight / included_weight if included else 0.0
        if value is not None:
            total += effective * value
        components.append(MaturityComponent(
            code=spec.code, title=spec.title, legal_id=spec.legal_id, weight=spec.weight,
            effective_weight=round(effective, 6), value=round(value, 6) if value is not None else None,
            numerator=num, denominator=den, included=included,
            note=INCIDENTS_NOTE if spec.code == "incidents_reported_on_time" else None))
    score = round(100.0 * total, 1) if included_weight > 0 else None
    return MaturityView(organization_id, on, score, FORMULA_VERSION, components)
