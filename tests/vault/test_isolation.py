"""Driver-level SQL in the vault names ``organization_id`` itself: another organization's rows are never found.

The ORM's tenant filter (core/db.py) does not see raw DBAPI cursors, so these tests plant rows of organization
B that would match A's queries if the organization were left out, and check A never sees them.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update

from qorgau.vault.models import VaultLookup, VaultPseudonym, VaultSubject
from qorgau.vault.service import SubjectRecord

from .conftest import IIN, IIN_2, NAME, principal


def test_another_organizations_row_with_the_same_blind_index_is_never_matched(platform, vault, tenant_a, tenant_b) -> None:
    with platform.db.transaction(tenant_b.org_id) as s:
        b_token = vault.tokenize(s, "KZ_IIN", IIN_2, actor="test")
    with platform.db.transaction(tenant_a.org_id) as s:
        a_token = vault.tokenize(s, "KZ_IIN", IIN, actor="test")
    with platform.db.transaction() as s:
        # Plant, in B, a lookup row carrying A's exact blind index, pointing at B's subject,
        # and remove A's own row: a query without the organization would now find B's subject.
        a_blind = s.scalar(select(VaultLookup.blind_index).where(VaultLookup.organization_id == tenant_a.org_id))
        s.execute(VaultLookup.__table__.delete().where(VaultLookup.organization_id == tenant_a.org_id))
        s.execute(insert(VaultLookup.__table__).values(organization_id=tenant_b.org_id, entity_type="KZ_IIN",
                                                       blind_index=a_blind, subject_id=b_token.subject_id, valid=True))
    vault._cache.clear()
    with platform.db.transaction(tenant_a.org_id) as s:
        assert vault.lookup(s, "KZ_IIN", IIN) is None  # _lookup_subject
        again = vault.tokenize(s, "KZ_IIN", IIN, actor="test")  # _lookup_token: not B's subject
        assert again.created and again.subject_id not in (a_token.subject_id, b_token.subject_id)
        batch, = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME})], actor="test")  # select_in
        assert batch.subject_id == again.subject_id
    with platform.db.transaction(tenant_b.org_id) as s:
        identity = vault.detokenize(s, b_token.pseudonym, purpose="check", principal=principal(tenant_b.org_id, "dpo"))
        assert identity.identifiers == {"KZ_IIN": [IIN_2]}  # B's subject got nothing of A's


def test_a_batch_never_updates_or_links_another_organizations_subject(platform, vault, tenant_a, tenant_b) -> None:
    with platform.db.transaction(tenant_b.org_id) as s:
        b_token, = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN_2})], actor="test")
    with platform.db.transaction(tenant_a.org_id) as s:
        a_token, = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN})], actor="test")
    with platform.db.transaction() as s:
        # Point A's lookup row at B's subject (a corrupted or malicious row): A's batch must not open or
        # update B's subject, nor hand out B's pseudonym.
        s.execute(update(VaultLookup.__table__).where(VaultLookup.organization_id == tenant_a.org_id)
                  .values(subject_id=b_token.subject_id))
        b_sealed = s.scalar(select(VaultSubject.sealed).where(VaultSubject.id == b_token.subject_id))
    vault._cache.clear()
    with platform.db.transaction(tenant_a.org_id) as s:
        token, = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME})], actor="test")
        assert token.pseudonym != b_token.pseudonym and token.subject_id != b_token.subject_id
    with platform.db.reader() as s:
        assert s.scalar(select(VaultSubject.sealed).where(VaultSubject.id == b_token.subject_id)) == b_sealed
        b_pseudonyms = s.scalars(select(VaultPseudonym.organization_id).where(
            VaultPseudonym.subject_id == b_token.subject_id)).all()
    assert set(b_pseudonyms) == {tenant_b.org_id}
    assert a_token.subject_id != b_token.subject_id
