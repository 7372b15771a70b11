"""The decision point's remembered allows (validated by decision versions) never disagree with the consents.

* a property-style test: random sequences of give / withdraw / expire / legal basis add and revoke, and
  after every step checks (by pseudonym and by IIN, now and at later instants, each asked twice so the second
  answer comes from the remembered allow when there is one) compared with a slow reference evaluation over
  the consent and legal-basis rows through the ORM;
* negative controls showing the remembered allows are really used, and really validated;
* after a crypto-shred, a check by IIN and by pseudonym both answer ``subject_erased``.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
import pytest
from sqlalchemy import or_, select, text

from conftest import Tenant
from qorgau.consent.decision import Decision
from qorgau.consent.models import ACTIVE, EXPIRED, WITHDRAWN, Consent, LegalBasis
from qorgau.consent.purposes import ancestors
from qorgau.consent.service import ConsentService, SubjectRef
from qorgau.core.db import utcnow
from qorgau.core.platform import Platform

from .helpers import give, iin_subject, withdraw

PURPOSES = ("marketing", "marketing.sms", "marketing.email")
CHECK_PURPOSES = ("marketing", "marketing.sms", "marketing.email", "service")
CATEGORIES = ("PHONE_NUMBER", "EMAIL_ADDRESS")


def reference(platform: Platform, org: int, subject_id: int, purpose: str, categories: tuple[str, ...],
              at: datetime) -> tuple[bool, str | None, int | None, int | None, str]:
    """The slow evaluation: ORM rows, the rules of docs/consent.md written out plainly."""
    chain = ancestors(purpose)
    rank = {code: i for i, code in enumerate(chain)}
    with platform.db.reader(org) as s:
        consents = s.scalars(select(Consent).where(Consent.subject_id == subject_id, Consent.purpose.in_(chain))).all()
        bases = s.scalars(select(LegalBasis).where(
            LegalBasis.purpose.in_(chain), LegalBasis.revoked_at.is_(None),
            or_(LegalBasis.subject_id.is_(None), LegalBasis.subject_id == subject_id))).all()
        narrower = s.scalars(select(Consent).where(Consent.subject_id == subject_id, Consent.status == ACTIVE,
                                                   Consent.purpose.like(purpose + ".%"))).all()

    def live(c: Consent) -> bool:
        return c.valid_until is None or c.valid_until > at

    usable = [c for c in consents if c.status == ACTIVE and live(c) and set(categories) <= set(c.data_categories)]
    if usable:
        best = min(usable, key=lambda c: (rank[c.purpose], -c.id))
        return True, "consent", best.id, None, "consent_active"
    live_bases = [b for b in bases if b.valid_from <= at and (b.valid_until is None or b.valid_until > at)]
    if live_bases:
        best_basis = min(live_bases, key=lambda b: (rank[b.purpose], 0 if b.subject_id is not None else 1, b.id))
        return True, best_basis.kind, None, best_basis.id, "legal_basis"
    if any(c.status == ACTIVE and live(c) for c in consents):
        return False, None, None, None, "category_not_covered"
    if any(c.status == WITHDRAWN for c in consents):
        return False, None, None, None, "withdrawn"
    if any(c.status == EXPIRED or (c.status == ACTIVE and not live(c)) for c in consents):
        return False, None, None, None, "expired"
    if any(live(c) for c in narrower):
        return False, None, None, None, "purpose_not_covered"
    return False, None, None, None, "no_consent"


def as_tuple(d: Decision) -> tuple[bool, str | None, int | None, int | None, str]:
    return d.allow, d.basis, d.consent_id, d.legal_basis_id, d.reason


@pytest.mark.parametrize("seed", [5, 17])
def test_remembered_allows_never_disagree_with_the_consents(platform: Platform, consents: ConsentService,
                                                           tenant_a: Tenant, seed: int) -> None:
    rnd = random.Random(seed)
    org = tenant_a.org_id
    subjects = [iin_subject(n) for n in (1, 2, 3)]
    ids: list[int] = []
    pseudonyms: list[str] = []
    for subject in subjects:
        # a consent that is never withdrawn: no withdrawal below shreds anyone (tested separately)
        keep = give(consents, platform, org, subject, purpose="service", data_categories=["KZ_IIN"])
        ids.append(keep.subject_id)
        with platform.db.reader(org) as s:
            pseudonyms.append(consents.subject_pseudonym(s, keep))
    live_consents: list[int] = []
    bases: list[int] = []
    start = utcnow()
    instants = [None, start + timedelta(days=1), start + timedelta(days=3), start + timedelta(days=40)]
    operations: list[str] = []
    compared = remembered_hits = 0

    def compare(step: str) -> None:
        nonlocal compared, remembered_hits
        for _ in range(6):
            n = rnd.randrange(len(subjects))
            ref = SubjectRef(pseudonym=pseudonyms[n]) if rnd.random() < 0.5 else subjects[n]
            purpose = rnd.choice(CHECK_PURPOSES)
            categories = tuple(c for c in CATEGORIES if rnd.random() < 0.4)
            at = rnd.choice(instants)
            first = consents.check(ref, organization_id=org, purpose=purpose, data_categories=categories, at=at)
            full_before = len(statements)
            second = consents.check(ref, organization_id=org, purpose=purpose, data_categories=categories, at=at)
            remembered_hits += second.allow and len(statements) == full_before
            expected = reference(platform, org, ids[n], purpose, categories, at or first.checked_at)
            expected_second = reference(platform, org, ids[n], purpose, categories, at or second.checked_at)
            context = f"seed {seed}, after {step} ({'; '.join(operations[-4:])}), subject {n}, {ref!r}, {purpose}, " \
                      f"{categories}, at={at}"
            assert as_tuple(first) == expected, context
            assert as_tuple(second) == expected_second, context
            compared += 2

    statements: list[str] = []  # the full statements run (a remembered allow runs only the validation one)
    execute = consents.decisions._execute  # noqa: SLF001

    def recording(sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        if "UNION ALL" in sql:
            statements.append(sql)
        return execute(sql, params)

    consents.decisions._execute = recording  # type: ignore[method-assign]  # noqa: SLF001
    compare("start")
    for step in range(45):
        op = rnd.choice(["give", "give", "withdraw", "withdraw", "basis", "revoke", "expire"])
        n = rnd.randrange(len(subjects))
        if op == "give":
            until = rnd.choice([None, start + timedelta(days=2), start + timedelta(days=30)])
            purpose = rnd.choice(PURPOSES)
            categories = [c for c in CATEGORIES if rnd.random() < 0.6] or ["PHONE_NUMBER"]
            c = give(consents, platform, org, subjects[n], purpose=purpose, data_categories=categories,
                     valid_until=until)
            live_consents.append(c.id)
            operations.append(f"give #{c.id} s{n} {purpose} {categories} until={until is not None}")
        elif op == "withdraw" and live_consents:
            cid = live_consents.pop(rnd.randrange(len(live_consents)))
            with platform.db.reader(org) as s:
                status = consents.get_consent(s, cid).status_at(utcnow())
            if status == ACTIVE:
                w = withdraw(consents, platform, org, cid)
                assert not w.shredded
                operations.append(f"withdraw #{cid} refused={w.refused}")
        elif op == "basis":
            kind = rnd.choice(["contract", "law", "vital_interest"])
            purpose = rnd.choice(PURPOSES)
            per_subject = rnd.random() < 0.6
            until = rnd.choice([None, start + timedelta(days=2)])
            valid_from = rnd.choice([None, start + timedelta(days=2)])
            if valid_from is not None and until is not None:
                until = None
            with platform.db.transaction(org) as s:
                b = consents.add_legal_basis(s, kind=kind, purpose=purpose, reference="Law 94-V Art.9",
                                             subject=subjects[n] if per_subject else None, valid_from=valid_from,
                                             valid_until=until, actor="user:1")
            bases.append(b.id)
            operations.append(f"basis #{b.id} {kind} {purpose} s{n if per_subject else '*'}")
        elif op == "revoke" and bases:
            bid = bases.pop(rnd.randrange(len(bases)))
            with platform.db.transaction(org) as s:
                consents.revoke_legal_basis(s, bid, actor="user:1")
            operations.append(f"revoke #{bid}")
        elif op == "expire":
            with platform.db.transaction(org) as s:
                expired = consents.expire_due(s, actor="user:1", now=start + timedelta(days=rnd.choice([3, 31])))
            operations.append(f"expire ({expired})")
        compare(op)
    assert compared >= 500
    assert remembered_hits > 0  # the remembered path was exercised, not only the full statement


def test_a_remembered_allow_is_used_and_dropped_when_the_version_moves(platform: Platform,
                                                                     consents: ConsentService,
                                                                     tenant_a: Tenant) -> None:
    """Negative control: change a consent behind the service's back (no version increment) — the remembered
    allow still answers (so the test below could fail); increment the version — it is dropped at once."""
    org = tenant_a.org_id
    consent = give(consents, platform, org)
    ref = iin_subject(1)
    assert consents.check(ref, organization_id=org, purpose="marketing.sms").allow
    with platform.db.engine.begin() as conn:
        conn.execute(text("UPDATE consent_consents SET status = 'withdrawn' WHERE id = :i"), {"i": consent.id})
    stale = consents.check(ref, organization_id=org, purpose="marketing.sms")
    assert stale.allow, "the remembered allow should have answered: this control cannot see the cache"
    with platform.db.engine.begin() as conn:
        conn.execute(text("UPDATE consent_decision_versions SET version = version + 1 "
                          "WHERE organization_id = :o AND subject_id = :s"), {"o": org, "s": consent.subject_id})
    d = consents.check(ref, organization_id=org, purpose="marketing.sms")
    assert not d.allow and d.reason == "withdrawn"


def test_a_remembered_allow_holds_only_within_its_term(platform: Platform, consents: ConsentService,
                                                      tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    until = utcnow() + timedelta(days=2)
    consent = give(consents, platform, org, valid_until=until)
    ref = iin_subject(1)
    assert consents.check(ref, organization_id=org, purpose="marketing.sms").consent_id == consent.id
    assert consents.check(ref, organization_id=org, purpose="marketing.sms").allow  # remembered
    later = consents.check(ref, organization_id=org, purpose="marketing.sms", at=until)
    assert not later.allow and later.reason == "expired"
    assert not consents.check(ref, organization_id=org, purpose="marketing.sms", at=until + timedelta(seconds=1)).allow


def test_a_blanket_legal_basis_revoked_is_seen_by_the_next_check(platform: Platform, consents: ConsentService,
                                                                tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    give(consents, platform, org, purpose="service")  # the subject exists and has a version row
    with platform.db.transaction(org) as s:
        basis = consents.add_legal_basis(s, kind="law", purpose="kyc", reference="AML/CFT Law", actor="u")
    ref = iin_subject(1)
    for _ in range(2):
        d = consents.check(ref, organization_id=org, purpose="kyc.aml")
        assert d.allow and d.legal_basis_id == basis.id
    with platform.db.transaction(org) as s:
        consents.revoke_legal_basis(s, basis.id, actor="u")
    d = consents.check(ref, organization_id=org, purpose="kyc.aml")
    assert not d.allow and d.reason == "no_consent"


def test_after_a_shred_both_references_answer_subject_erased(platform: Platform, consents: ConsentService,
                                                            tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    consent = give(consents, platform, org, iin_subject(1), purpose="marketing.sms")
    with platform.db.reader(org) as s:
        pseudonym = consents.subject_pseudonym(s, consent)
    by_pseudonym, by_iin = SubjectRef(pseudonym=pseudonym), iin_subject(1)
    assert consents.check(by_iin, organization_id=org, purpose="marketing.sms").allow
    with platform.db.transaction(org) as s:
        blanket = consents.add_legal_basis(s, kind="law", purpose="kyc.aml", reference="AML/CFT Law", actor="u")
    w = withdraw(consents, platform, org, consent.id)
    assert w.shredded
    for ref in (by_pseudonym, by_iin):
        for purpose in ("marketing.sms", "marketing", "analytics"):
            d = consents.check(ref, organization_id=org, purpose=purpose)
            assert not d.allow and d.reason == "subject_erased", (ref, purpose, d)
        # a legal basis for every subject still answers (as for anyone in that purpose's population)
        d = consents.check(ref, organization_id=org, purpose="kyc.aml")
        assert d.allow and d.legal_basis_id == blanket.id
    # the tombstone keeps no subject id, and another identifier is still simply unknown
    with platform.db.engine.connect() as conn:
        columns = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(consent_erased_lookups)")] \
            if platform.db.dialect == "sqlite" else [r[0] for r in conn.execute(text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'consent_erased_lookups'"))]
        assert "subject_id" not in columns and "blind_index" in columns
        assert conn.execute(text("SELECT count(*) FROM consent_erased_lookups WHERE organization_id = :o"),
                            {"o": org}).scalar() == 1
    assert consents.check(iin_subject(2), organization_id=org, purpose="marketing.sms").reason == "unknown_subject"
    # another operator never sees the tombstone
    # the person comes back: a new consent by IIN makes a new vault subject, and the IIN finds it again
    again = give(consents, platform, org, by_iin, purpose="marketing.sms")
    assert again.subject_id != consent.subject_id
    d = consents.check(by_iin, organization_id=org, purpose="marketing.sms")
    assert d.allow and d.consent_id == again.id
    assert consents.check(by_pseudonym, organization_id=org, purpose="marketing.sms").reason == "subject_erased"


def test_a_tombstone_is_the_operators_own(platform: Platform, consents: ConsentService, tenant_a: Tenant,
                                          tenant_b: Tenant) -> None:
    a = give(consents, platform, tenant_a.org_id, iin_subject(1))
    give(consents, platform, tenant_b.org_id, iin_subject(5))  # B has keys and subjects, not this one
    assert withdraw(consents, platform, tenant_a.org_id, a.id).shredded
    assert consents.check(iin_subject(1), organization_id=tenant_a.org_id,
                          purpose="marketing.sms").reason == "subject_erased"
    assert consents.check(iin_subject(1), organization_id=tenant_b.org_id,
                          purpose="marketing.sms").reason == "unknown_subject"


def test_migration_0007_backfills_the_versions_of_existing_consents(platform: Platform, consents: ConsentService,
                                                                   tenant_a: Tenant) -> None:
    from alembic import command

    from qorgau.core import migrate

    org = tenant_a.org_id
    a = give(consents, platform, org, iin_subject(1))
    b = give(consents, platform, org, iin_subject(2), purpose="service")
    with platform.db.transaction(org) as s:
        consents.add_legal_basis(s, kind="law", purpose="kyc.aml", reference="AML/CFT Law", actor="u")
        named = consents.add_legal_basis(s, kind="vital_interest", purpose="service", reference="Art.9",
                                         subject=iin_subject(3), actor="u")
    consents.close()
    engine = platform.db.engine
    command.downgrade(migrate.alembic_config(engine), "0006")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM consent_consents")).scalar() == 2  # the consents stay
    migrate.upgrade(engine, "head")
    with engine.connect() as conn:
        rows = set(conn.execute(text("SELECT subject_id, version FROM consent_decision_versions "
                                     "WHERE organization_id = :o"), {"o": org}).all())
    assert rows == {(a.subject_id, 1), (b.subject_id, 1), (named.subject_id, 1), (0, 1)}
    first = consents.check(iin_subject(1), organization_id=org, purpose="marketing.sms")
    assert first.allow and first.consent_id == a.id
    assert withdraw(consents, platform, org, a.id).consent_id == a.id
    assert not consents.check(iin_subject(1), organization_id=org, purpose="marketing.sms").allow


def test_a_remembered_allow_does_not_outlive_a_shred_done_through_the_vault(platform: Platform,
                                                                          consents: ConsentService,
                                                                          tenant_a: Tenant) -> None:
    """A shred straight through the vault (no withdrawal, so no version bump): pseudonyms survive it, so the
    validation statement must notice the subject is no longer active."""
    org = tenant_a.org_id
    consent = give(consents, platform, org, iin_subject(3), purpose="marketing.sms")
    with platform.db.reader(org) as s:
        pseudonym = consents.subject_pseudonym(s, consent)
    ref = SubjectRef(pseudonym=pseudonym)
    assert consents.check(ref, organization_id=org, purpose="marketing.sms").allow
    assert consents.check(ref, organization_id=org, purpose="marketing.sms").allow  # now remembered
    with platform.db.transaction(org) as s:
        consents.vault.shred_subject(s, consent.subject_id, reason="erasure request", actor="u")
    d = consents.check(ref, organization_id=org, purpose="marketing.sms")
    assert not d.allow and d.reason == "subject_erased", d
