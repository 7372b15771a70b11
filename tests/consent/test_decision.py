"""The decision point's hot path: driver-level SQL that applies the tenant rule itself, one indexed
statement, the same answers as the general code paths."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from conftest import Tenant
from qorgau.consent.decision import _sqlite_timestamp, _statement, _statement_params, _versions_sql
from qorgau.consent.service import ConsentService, SubjectRef
from qorgau.core.db import utcnow
from qorgau.core.platform import Platform
from qorgau.vault.service import check_identifier

from .helpers import give, iin_subject
from .owned import subject_iin


def test_the_fast_iin_path_normalizes_exactly_like_the_vault() -> None:
    for serial in range(50):
        value = subject_iin(serial)
        assert check_identifier("KZ_IIN", value) == (value, None)


def test_timestamps_compare_like_sqlalchemy_stores_them(platform: Platform, consents: ConsentService,
                                                       tenant_a: Tenant) -> None:
    if platform.db.dialect != "sqlite":
        pytest.skip("SQLite stores timestamps as text; PostgreSQL compares timestamptz")
    until = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    consent = give(consents, platform, tenant_a.org_id, valid_until=until)
    with platform.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT valid_until FROM consent_consents WHERE id = :i"), {"i": consent.id}).scalar()
    assert stored == _sqlite_timestamp(until) == "2030-01-02 03:04:05.000000"
    almaty = timezone(timedelta(hours=5))
    assert _sqlite_timestamp(until.astimezone(almaty)) == stored


def test_the_statement_uses_the_subject_index_not_a_purpose_scan(platform: Platform, consents: ConsentService,
                                                                 tenant_a: Tenant) -> None:
    if platform.db.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    give(consents, platform, tenant_a.org_id)
    sql = _statement("pseudonym", 2, "?")
    ts = "2030-01-01 00:00:00.000000"
    params = _statement_params(ts, 1, (1, "default", "ps_x"), ("a.b", "a"))
    with platform.db.engine.connect() as conn:
        plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
        assert "ix_consent_consents_org_subject_purpose" in plan and "SCAN" not in plan, plan
        for by, subject in (("pseudonym", (1, "default", "ps_x")), ("identifier", (1, "KZ_IIN", b"x" * 32))):
            # the validation statement (a remembered allow): unique-index probes only
            plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + _versions_sql(by, "?"),
                                                                         (1, 1, *subject)))
            assert "SEARCH consent_decision_versions USING INDEX" in plan and "SCAN" not in plan, plan


def test_a_check_never_finds_another_organizations_rows_even_with_the_same_ids(
        platform: Platform, consents: ConsentService, tenant_a: Tenant, tenant_b: Tenant) -> None:
    """Driver-level SQL applies ``organization_id`` itself: B asking about A's subject ids, pseudonyms or
    identifiers gets nothing, even when B has rows with the very same purpose."""
    a = give(consents, platform, tenant_a.org_id, iin_subject(1))
    give(consents, platform, tenant_b.org_id, iin_subject(2))
    with platform.db.reader(tenant_a.org_id) as s:
        a_pseudonym = consents.subject_pseudonym(s, a)
    assert consents.check(SubjectRef(pseudonym=a_pseudonym), organization_id=tenant_a.org_id,
                          purpose="marketing.sms").allow
    for subject in (SubjectRef(pseudonym=a_pseudonym), iin_subject(1)):
        d = consents.check(subject, organization_id=tenant_b.org_id, purpose="marketing.sms")
        assert not d.allow and d.reason == "unknown_subject" and d.consent_id is None


def test_bad_check_arguments_name_their_field(consents: ConsentService, tenant_a: Tenant) -> None:
    subject = iin_subject(1)
    cases = [
        (dict(subject=subject, organization_id="1", purpose="marketing"), "organization_id"),
        (dict(subject=subject, organization_id=tenant_a.org_id, purpose="marketing", at=datetime(2030, 1, 1)), "at"),
        (dict(subject=subject, organization_id=tenant_a.org_id, purpose="marketing", data_categories="PHONE"),
         "data_categories"),
        (dict(subject=SubjectRef(identifier_type="PERSON", identifier="x"), organization_id=tenant_a.org_id,
              purpose="marketing"), "subject.identifier_type"),
        (dict(subject=SubjectRef(pseudonym="ps_" + "a" * 26, domain="Bad Domain"), organization_id=tenant_a.org_id,
              purpose="marketing"), "subject.domain"),
    ]
    from qorgau.core.errors import InvalidInput

    for kwargs, field in cases:
        subject_ = kwargs.pop("subject")
        with pytest.raises(InvalidInput) as exc:
            consents.check(subject_, **kwargs)
        assert exc.value.field == field


def test_an_organization_that_never_stored_anyone_answers_without_error(consents: ConsentService,
                                                                        tenant_b: Tenant) -> None:
    d = consents.check(iin_subject(1), organization_id=tenant_b.org_id, purpose="marketing.sms",
                       at=utcnow() + timedelta(days=1))
    assert not d.allow and d.reason == "unknown_subject"
