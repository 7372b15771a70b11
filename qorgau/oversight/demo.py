"""Oversight demo data for the DEMO organization (``make run``): a review queue with work in it, a decided
decision the demo citizen can read and contest, and the reviewer-evidence page with some history.

Built through the services (:class:`~qorgau.oversight.service.OversightService`,
:class:`~qorgau.consent.service.ConsentService`) in one transaction at the demo operator, once: nothing
happens when the demo AI system already exists or there is no demo organization. Runs after the consent
demo (it reuses the demo citizen's synthetic IIN and the other synthetic subjects).

What it creates, all clearly marked DEMO:

* the AI system ``demo-scoring`` (declared high-risk, medium autonomy, no webhook: the outcome is
  pollable, nothing is sent anywhere);
* the demo citizen's consent to ``credit.scoring`` and a credit-limit decision about them that
  ``demo-reviewer`` amended with a rationale — so ``/me`` shows "decisions about me" with the key factors and
  the citizen can object (the objection goes to someone else, due in 3 working days);
* pending decisions (credit limit, loan) about the other synthetic subjects that consented to scoring, for
  the reviewer queue, and one refused outright: a subject without a scoring consent (L-PD-AUTO).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from ..aisystems.models import AiSystem
from ..consent.decision import SubjectRef
from ..consent.demo import DEMO_CITIZEN_IIN, OTHER_SUBJECTS, _evidence
from ..consent.service import consent_for
from ..core import auth
from ..core.demo import DEMO_BIN
from ..identifiers import synthetic_kz_number
from .service import Factor, Submission, oversight_for

if TYPE_CHECKING:
    from ..core.platform import Platform

ACTOR = "system:demo"
SYSTEM = "demo-scoring"
MODEL_VERSION = "demo-scoring 2.3.1"


def _factors(income: float, history: float, debt: float) -> list[Factor]:
    return [Factor("income_stability", income, label="Income stability (12 months)"),
            Factor("credit_history", history, label="Repayment history"),
            Factor("debt_to_income", debt, label="Debt-to-income ratio")]


def _other(n: int) -> SubjectRef:
    # The consent demo's synthetic subjects (same derivation); n % 3 == 0 consented to credit scoring.
    return SubjectRef(identifier_type="KZ_IIN", identifier=synthetic_kz_number("850302" + "4", 2000 + 37 * n))


def seed_oversight_demo(platform: Platform) -> bool:
    """Seed the oversight demo at the DEMO organization; False if there is none or it was seeded before."""
    with platform.db.reader() as session:
        org = auth.find_organization_by_bin(session, DEMO_BIN)
        reviewer = session.scalar(select(auth.User).where(auth.User.username == "demo-reviewer")
                                  .execution_options(qorgau_cross_tenant=True))
        if org is None or reviewer is None:
            return False
        org_id = org.id
    service, consent = oversight_for(platform), consent_for(platform)
    me = SubjectRef(identifier_type="KZ_IIN", identifier=DEMO_CITIZEN_IIN)
    # The consent first, in its own transaction: the decision point reads committed consents only.
    with platform.db.transaction(org_id) as session:
        if session.scalar(select(AiSystem.id).where(AiSystem.code == SYSTEM)) is not None:
            return False
        ref, digest = _evidence("SCORING-0005")
        consent.give(session, me, purpose="credit.scoring", data_categories=["credit_history", "financial", "employment"],
                     valid_until=None, third_party_transfer=False, counterparties=[], cross_border=False,
                     countries=[], public_sources=False, other=None, channel="non_state_service",
                     evidence_ref=ref, evidence_sha256=digest, actor=ACTOR)
    with platform.db.transaction(org_id) as session:
        reviewer = session.get(auth.User, reviewer.id)
        service.register_system(session, code=SYSTEM, name="DEMO — credit scoring model", risk_class="high",
                                autonomy="medium", description="DEMO: a scoring model whose credit decisions "
                                "a human approves before they take effect.", actor=ACTOR)

        def submit(key: str, subject: SubjectRef, kind: str, outcome: object, factors: list[Factor],
                   confidence: float) -> int:
            result = service.submit(session, Submission(
                system=SYSTEM, idempotency_key=key, subject=subject, decision_type=kind, proposed_outcome=outcome,
                factors=factors, model_version=MODEL_VERSION, confidence=confidence,
                input_ref=f"demo://scoring/{key}"), actor=ACTOR)
            return result.decision.id

        mine = submit("demo-limit-citizen", me, "credit_limit", 300_000, _factors(0.45, 0.25, -0.30), 0.81)
        view = service.open(session, mine, user=reviewer)
        service.review(session, mine, user=reviewer, action="amend", expected_version=view.version,
                       outcome=450_000, rationale="DEMO: salary confirmed by the employer's letter; the model "
                       "under-weighted the stable income.")
        for n in range(OTHER_SUBJECTS):
            if n % 3 == 0:
                submit(f"demo-limit-{n}", _other(n), "credit_limit", 150_000 + 50_000 * n,
                       _factors(0.30, 0.40, -0.20 - 0.05 * n), 0.92 - 0.04 * n)
                submit(f"demo-loan-{n}", _other(n), "loan", "decline" if n else "approve",
                       _factors(-0.20, 0.35, -0.45), 0.67)
        submit("demo-limit-no-consent", _other(1), "credit_limit", 200_000, _factors(0.3, 0.3, -0.2), 0.88)
    return True


__all__ = ["seed_oversight_demo"]
