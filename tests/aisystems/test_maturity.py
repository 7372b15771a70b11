"""The maturity index (L-AI-MATURITY [plan]): a weighted mean of shares read from the platform's registers, 0/0
components left out with the weights renormalized, one snapshot per day, a trend — each expected score below is
computed by hand from the scenario the test builds through the services."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from oversight.helpers import consent as oversight_consent
from oversight.helpers import review, submit, system as oversight_system, user
from qorgau.aisystems.governance import governance_for, snapshot_all
from qorgau.aisystems.maturity import COMPONENTS, MATURITY_FORMULA, compute_maturity
from qorgau.aisystems.register import register_for
from qorgau.consent.decision import SubjectRef
from qorgau.consent.service import consent_for
from qorgau.core.calendar import local_date
from qorgau.core.db import utcnow
from qorgau.core.errors import InvalidInput, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number
from qorgau.oversight.service import oversight_for

from .governance_helpers import gv_rules, register  # noqa: F401

pytestmark = pytest.mark.usefixtures("gv_rules")


def _today() -> date:
    return local_date(utcnow())


def _give(platform: Platform, org: int, serial: int, **fields: object) -> None:
    values: dict[str, object] = dict(data_categories=["KZ_IIN"], valid_until=None, third_party_transfer=False,
                                     counterparties=[], cross_border=False, countries=[], public_sources=False,
                                     other=None, channel="written", evidence_ref=None, evidence_sha256=None,
                                     actor="user:1")
    values.update(fields)
    subject = SubjectRef(identifier_type="KZ_IIN", identifier=synthetic_kz_number("9001014", serial))
    with platform.db.transaction(org) as s:
        consent_for(platform).give(s, subject, purpose="credit.scoring", **values)  # type: ignore[arg-type]


def _ai_scenario(platform: Platform, org: int) -> None:
    """Three systems: one complete with its labelling duty met at once (on time), one missing the failure impact
    (not fully classified), one whose labelling duty fell due in February 2026 and is still open (late)."""
    registry = register_for(platform)
    generator = register(platform, org, "generator", functions__synthetic_content=True)
    register(platform, org, "incomplete", failure__impact=None)
    late = register(platform, org, "late", functions__synthetic_content=True)
    with platform.db.transaction(org) as s:
        (duty,) = registry.obligations(s, system_id=generator)
        registry.mark_obligation_met(s, duty.id, evidence="labelling policy v1", actor="user:1")
        # Classified as of a day before the law: the duty is void; as of 2 Feb 2026 it fires again, due in Feb.
        registry.classify(s, late, as_of=date(2026, 1, 10), actor="user:1")
        registry.classify(s, late, as_of=date(2026, 2, 2), actor="user:1")
        (overdue,) = registry.obligations(s, system_id=late)
    assert overdue.status == "open" and overdue.due_on < _today()


def _consent_scenario(platform: Platform, org: int) -> None:
    """Four consents: two complete (an evidence reference; a document hash), one with no evidence, one allowing
    transfer to third parties without naming any."""
    _give(platform, org, 1, evidence_ref="contract 17/2026")
    _give(platform, org, 2, evidence_sha256="cd" * 32)
    _give(platform, org, 3)
    _give(platform, org, 4, evidence_ref="contract 18/2026", third_party_transfer=True)


def test_the_index_is_the_weighted_mean_of_the_registers_shares(platform, tenant_a):
    _ai_scenario(platform, tenant_a.org_id)
    _consent_scenario(platform, tenant_a.org_id)
    gov = governance_for(platform)
    with platform.db.reader(tenant_a.org_id) as s:
        view = gov.maturity(s)
    got = {c.code: (c.numerator, c.denominator, c.included) for c in view.components}
    assert got == {"ai_systems_classified": (2, 3, True), "ai_obligations_on_time": (1, 2, True),
                   "consents_complete": (2, 4, True), "objections_on_time": (0, 0, False),
                   "decisions_reviewed_on_time": (0, 0, False), "incidents_reported_on_time": (0, 0, False)}
    # By hand: (0.20·2/3 + 0.20·1/2 + 0.15·2/4) / (0.20 + 0.20 + 0.15) = 0.308333… / 0.55 = 0.560606… → 56.1
    assert view.score == 56.1
    assert view.component("ai_obligations_on_time").effective_weight == pytest.approx(0.20 / 0.55, abs=1e-6)
    assert view.component("objections_on_time").effective_weight == 0.0
    assert view.component("incidents_reported_on_time").note and "leak register" in \
        view.component("incidents_reported_on_time").note
    assert sum(c.effective_weight for c in view.components) == pytest.approx(1.0)
    data = view.to_dict()
    assert data["formula"] == MATURITY_FORMULA and data["components"][0]["title"]["kk"]
    assert abs(sum(c.weight for c in COMPONENTS) - 1.0) < 1e-9


def test_components_without_data_are_excluded_and_the_weights_renormalized(platform, tenant_a):
    gov = governance_for(platform)
    with platform.db.reader(tenant_a.org_id) as s:
        empty = gov.maturity(s)
    assert empty.score is None and not any(c.included for c in empty.components)
    _consent_scenario(platform, tenant_a.org_id)
    with platform.db.reader(tenant_a.org_id) as s:
        only_consents = gov.maturity(s)
    # One component with data: its weight becomes 1 and the score is its share, 2/4.
    assert only_consents.score == 50.0
    assert only_consents.component("consents_complete").effective_weight == 1.0
    # Yesterday nothing existed yet.
    with platform.db.reader(tenant_a.org_id) as s:
        assert gov.maturity(s, on=_today() - timedelta(days=1)).score is None
        with pytest.raises(InvalidInput) as err:
            gov.maturity(s, on=_today() + timedelta(days=1))
        assert err.value.field == "on"


def test_oversight_objections_and_reviews_count_against_their_deadlines(platform, tenant_a):
    org = tenant_a.org_id
    service = oversight_for(platform)
    oversight_system(service, platform, org)   # declared by oversight, never classified by the rules
    for serial in (1, 2, 3):
        oversight_consent(platform, org, serial)  # no evidence recorded: incomplete
    reviewer = user(platform, org, tenant_a.users["reviewer"][0])
    other = user(platform, org, tenant_a.users["dpo"][0])
    d1 = submit(service, platform, org, "k1", serial=1).decision
    d2 = submit(service, platform, org, "k2", serial=2).decision   # left pending, due in 24 hours
    d3 = submit(service, platform, org, "k3", serial=3).decision
    review(service, platform, org, d1.id, reviewer, "approve")
    review(service, platform, org, d3.id, reviewer, "approve")
    with platform.db.transaction(org) as s:
        on_time = service.object(s, d1.id, channel="portal", filed_by="citizen:1")
        service.object(s, d3.id, channel="written", filed_by="user:1",   # filed by post ten days ago: overdue
                       now=utcnow() - timedelta(days=10))
    with platform.db.transaction(org) as s:
        service.decide_objection(s, on_time.id, user=other, action="uphold", rationale="the income was verified")

    gov = governance_for(platform)
    with platform.db.reader(org) as s:
        view = gov.maturity(s)
    got = {c.code: (c.numerator, c.denominator) for c in view.components}
    assert got["decisions_reviewed_on_time"] == (2, 2)   # d2 is not due yet: not judged
    assert got["objections_on_time"] == (1, 2)
    assert got["ai_systems_classified"] == (0, 1) and got["consents_complete"] == (0, 3)
    assert got["ai_obligations_on_time"] == (0, 0)
    # By hand: (0.20·0 + 0.15·0 + 0.15·1/2 + 0.15·2/2) / 0.65 = 0.225 / 0.65 = 0.346153… → 34.6
    assert view.score == 34.6

    # Three days later, with nobody having touched d2, it is past its deadline: 2 of 3 on time.
    later = utcnow() + timedelta(days=3)
    with platform.db.reader(org) as s:
        then = compute_maturity(platform, s, org, local_date(later), now=later)
    assert then.component("decisions_reviewed_on_time").numerator == 2
    assert then.component("decisions_reviewed_on_time").denominator == 3
    # (0.15·1/2 + 0.15·2/3) / 0.65 = 0.175 / 0.65 = 0.269230… → 26.9
    assert then.score == 26.9
    assert d2.status == "pending"


def test_one_snapshot_per_day_and_the_trend_over_days(platform, tenant_a):
    gov = governance_for(platform)
    org = tenant_a.org_id
    _give(platform, org, 1, evidence_ref="contract 1")
    _give(platform, org, 2)
    with platform.db.transaction(org) as s:
        first = gov.snapshot_maturity(s)
    assert first.stored and first.score == 50.0
    _give(platform, org, 3, evidence_ref="contract 3")
    _give(platform, org, 4, evidence_ref="contract 4")
    with platform.db.transaction(org) as s:
        second = gov.snapshot_maturity(s)  # the same day again: replaces the day's snapshot
    assert second.score == 75.0
    with platform.db.reader(org) as s:
        assert gov.maturity_trend(s, days=30) == [(_today(), 75.0)]

    # Another day's snapshot, computed the way the daily job does (same storage path): a trend of two points.
    later = utcnow() + timedelta(days=2)
    with platform.db.transaction(org) as s:
        view = compute_maturity(platform, s, org, local_date(later), now=later)
        gov._store_snapshot(s, view)
    _give(platform, org, 5)  # a later change does not alter stored snapshots
    with platform.db.reader(org) as s:
        trend = gov.maturity_trend(s, days=30)
        snapshots = gov.maturity_snapshots(s, days=30)
    assert trend == [(_today(), 75.0), (local_date(later), 75.0)]
    assert [v.component("consents_complete").denominator for v in snapshots] == [4, 4]
    with platform.db.reader(org) as s:
        with pytest.raises(InvalidInput) as err:
            gov.maturity_trend(s, days=0)
        assert err.value.field == "days"


def test_the_index_and_its_snapshots_are_per_organization(platform, tenant_a, tenant_b):
    gov = governance_for(platform)
    _give(platform, tenant_a.org_id, 1, evidence_ref="contract 1")
    with platform.db.transaction(tenant_a.org_id) as s:
        gov.snapshot_maturity(s)
    with platform.db.transaction(tenant_b.org_id) as s:
        b = gov.snapshot_maturity(s)
    assert b.score is None and not b.stored  # nothing of a's counts for b, and nothing was stored
    with platform.db.reader(tenant_b.org_id) as s:
        assert gov.maturity_trend(s) == []
    with platform.db.reader(tenant_a.org_id) as s:
        assert gov.maturity_trend(s) == [(_today(), 100.0)]
    with platform.db.reader() as s:  # the index is an organization's: it needs a tenant-bound session
        with pytest.raises(PermissionDenied):
            gov.maturity(s)
    # The daily job: every organization in its own transaction; b has nothing to judge and stores nothing.
    scores = snapshot_all(platform)
    assert scores[tenant_a.org_id] == 100.0 and scores[tenant_b.org_id] is None
