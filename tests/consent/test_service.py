"""The consent service: giving, checking, withdrawing, transfers, confirmations — each rule as a story."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from conftest import Tenant
from qorgau.consent import receipts
from qorgau.consent.models import ConsentEvent, ConsentWithdrawal, ProcessorNotification
from qorgau.consent.outbox import OutboxMessage
from qorgau.consent.service import ConsentService, SubjectRef
from qorgau.core import audit
from qorgau.core.calendar import add_working_days
from qorgau.core.db import utcnow
from qorgau.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.vault.service import ReidentificationRefused, SubjectErased, vault_for

from .helpers import give, iin_subject, processor, withdraw
from .owned import subject_iin


def check(service: ConsentService, org: int, subject: SubjectRef, purpose: str = "marketing.sms", **kw):
    return service.check(subject, organization_id=org, purpose=purpose, **kw)


# --- giving -------------------------------------------------------------------------------------------


def test_a_consent_holds_the_eight_fields_and_the_name_lives_only_in_the_vault(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    cp = processor(consents, platform, tenant_a.org_id, kind="third_party", name="Partner LLP")
    de = processor(consents, platform, tenant_a.org_id, name="Cloud GmbH", country="DE", registration="HRB 1234",
                   serial=0)
    until = utcnow() + timedelta(days=365)
    consent = give(consents, platform, tenant_a.org_id, iin_subject(1), purpose="credit.scoring",
                   data_categories=["KZ_IIN", "credit_history", "health"], valid_until=until,
                   third_party_transfer=True, counterparties=[cp.counterparty.id, de.counterparty.id],
                   cross_border=True, countries=["DE"], public_sources=False, other="Scoring model v3",
                   channel="non_state_service", evidence_ref="eds-2026-001", evidence_sha256="ab" * 32,
                   full_name="Әлия Нұрланқызы Серікова")
    assert consent.purpose == "credit.scoring" and consent.status == "active" and consent.sensitive  # health
    assert consent.valid_until == until and consent.countries == ["DE"] and consent.third_party_transfer
    assert consent.receipt_id.startswith("cr_")
    assert "Әлия" not in repr(consent) and subject_iin(1) not in repr(consent)
    with platform.db.reader(tenant_a.org_id) as s:
        pseudonym = consents.subject_pseudonym(s, consent)
    # the full name went into the vault as the subject's PERSON attribute
    from qorgau.core.auth import Principal

    admin = Principal("user", tenant_a.users["admin"][0], tenant_a.org_id, frozenset({"admin"}))
    with platform.db.transaction(tenant_a.org_id) as s:
        identity = vault_for(platform).detokenize(s, pseudonym, purpose="credit.scoring", principal=admin)
    assert identity.identifiers["PERSON"] == ["Әлия Нұрланқызы Серікова"]
    assert identity.identifiers["KZ_IIN"] == [subject_iin(1)]
    with platform.db.reader(tenant_a.org_id) as s:
        events = s.scalars(select(ConsentEvent).where(ConsentEvent.consent_id == consent.id)).all()
        entries = [e for e in audit.list_entries(s, limit=20) if e.action == "consent.give"]
    assert [e.event for e in events] == ["given"] and events[0].channel == "non_state_service"
    assert entries and entries[0].object_id == str(consent.id) and "Әлия" not in str(entries[0].details)


def test_a_new_consent_for_the_same_purpose_supersedes_the_old_one(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    first = give(consents, platform, tenant_a.org_id)
    second = give(consents, platform, tenant_a.org_id, data_categories=["PHONE_NUMBER", "EMAIL_ADDRESS"])
    with platform.db.reader(tenant_a.org_id) as s:
        old = consents.get_consent(s, first.id)
        assert old.status == "superseded" and old.superseded_by_id == second.id
        assert second.version == 2
    d = check(consents, tenant_a.org_id, iin_subject(1), data_categories=["EMAIL_ADDRESS"])
    assert d.allow and d.consent_id == second.id


@pytest.mark.parametrize("override, field", [
    ({"purpose": "astrology.daily"}, "purpose"),
    ({"purpose": "Marketing SMS"}, "purpose"),
    ({"data_categories": []}, "data_categories"),
    ({"data_categories": ["PHONE_NUMBER", "shoe_size"]}, "data_categories.1"),
    ({"channel": "carrier_pigeon"}, "channel"),
    ({"valid_until": utcnow() - timedelta(seconds=1)}, "valid_until"),
    ({"cross_border": True, "countries": []}, "countries"),
    ({"cross_border": False, "countries": ["RU"]}, "countries"),
    ({"cross_border": True, "countries": ["RU", "XX"]}, "countries.1"),
    ({"cross_border": True, "countries": ["KZ"]}, "countries.0"),
    ({"counterparties": [987654]}, "counterparties.0"),
    ({"other": "call him on 8 701 234 56 78"}, "other"),
    ({"evidence_sha256": "not-a-hash"}, "evidence_sha256"),
    ({"evidence_ref": "IIN 791028302728"}, "evidence_ref"),
])
def test_bad_consent_input_names_the_field_and_stores_nothing(
        platform: Platform, consents: ConsentService, tenant_a: Tenant, override: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        give(consents, platform, tenant_a.org_id, **override)
    assert exc.value.field == field
    assert "791028302728" not in exc.value.message and "701" not in exc.value.message
    with platform.db.reader(tenant_a.org_id) as s:
        assert consents.list_consents(s) == []


def test_an_invalid_iin_is_refused_before_anything_is_stored(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    bad = SubjectRef(identifier_type="KZ_IIN", identifier="791028302729")  # wrong check digit
    with pytest.raises(InvalidInput) as exc:
        give(consents, platform, tenant_a.org_id, bad)
    assert exc.value.field == "subject.identifier" and "791028302729" not in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        check(consents, tenant_a.org_id, bad)
    assert exc.value.field == "subject.identifier"
    with platform.db.reader(tenant_a.org_id) as s:
        assert consents.list_consents(s) == [] and vault_for(platform).stats(s).subjects == 0


def test_a_subject_is_a_pseudonym_or_an_identifier_never_both_and_repr_hides_it() -> None:
    with pytest.raises(InvalidInput):
        SubjectRef(pseudonym="ps_" + "a" * 26, identifier_type="KZ_IIN", identifier="791028302728")
    with pytest.raises(InvalidInput):
        SubjectRef()
    with pytest.raises(InvalidInput):
        SubjectRef(identifier_type="KZ_IIN")
    ref = SubjectRef(identifier_type="KZ_IIN", identifier="791028302728")
    assert "791028302728" not in repr(ref) and "791028302728" not in str(ref)


def test_third_party_and_foreign_counterparties_need_the_consent_to_say_so(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    third = processor(consents, platform, tenant_a.org_id, kind="third_party", name="Partner")
    foreign = processor(consents, platform, tenant_a.org_id, name="Cloud", country="RU", registration="OGRN 1", serial=0)
    with pytest.raises(InvalidInput) as exc:
        give(consents, platform, tenant_a.org_id, counterparties=[third.counterparty.id])
    assert exc.value.field == "third_party_transfer"
    with pytest.raises(InvalidInput) as exc:
        give(consents, platform, tenant_a.org_id, counterparties=[foreign.counterparty.id])
    assert exc.value.field == "counterparties.0"
    ok = give(consents, platform, tenant_a.org_id, counterparties=[foreign.counterparty.id], cross_border=True,
              countries=["RU"])
    assert ok.counterparty_ids == [foreign.counterparty.id]


def test_another_organizations_counterparty_is_unknown(platform: Platform, consents: ConsentService,
                                                       tenant_a: Tenant, tenant_b: Tenant) -> None:
    theirs = processor(consents, platform, tenant_b.org_id)
    with pytest.raises(InvalidInput) as exc:
        give(consents, platform, tenant_a.org_id, counterparties=[theirs.counterparty.id])
    assert exc.value.field == "counterparties.0"


def test_consent_needs_a_session_of_one_organization(platform: Platform, consents: ConsentService) -> None:
    with platform.db.transaction() as s, pytest.raises(PermissionDenied):
        consents.give(s, iin_subject(1), purpose="marketing.sms", data_categories=["PHONE_NUMBER"], valid_until=None,
                      third_party_transfer=False, counterparties=[], cross_border=False, countries=[],
                      public_sources=False, other=None, channel="written", evidence_ref=None, evidence_sha256=None,
                      actor="t")


# --- checking -----------------------------------------------------------------------------------------


def test_check_answers_with_the_consent_and_the_reason(platform: Platform, consents: ConsentService,
                                                       tenant_a: Tenant) -> None:
    consent = give(consents, platform, tenant_a.org_id, purpose="marketing")
    org, subject = tenant_a.org_id, iin_subject(1)
    d = check(consents, org, subject, "marketing.sms", data_categories=["PHONE_NUMBER"])
    assert (d.allow, d.basis, d.consent_id, d.reason) == (True, "consent", consent.id, "consent_active")
    assert check(consents, org, subject, "marketing").allow
    assert check(consents, org, subject, "credit.scoring").reason == "no_consent"
    assert check(consents, org, subject, "marketing.sms", data_categories=["EMAIL_ADDRESS"]).reason == "category_not_covered"
    assert check(consents, org, subject, "astrology").reason == "unknown_purpose"
    assert check(consents, org, iin_subject(2)).reason == "unknown_subject"
    with pytest.raises(InvalidInput) as exc:
        check(consents, org, subject, "Not A Code")
    assert exc.value.field == "purpose"


def test_a_consent_to_a_narrower_purpose_does_not_cover_the_broader_one(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    give(consents, platform, tenant_a.org_id, purpose="marketing.sms")
    d = check(consents, tenant_a.org_id, iin_subject(1), "marketing")
    assert not d.allow and d.reason == "purpose_not_covered"


def test_check_by_pseudonym_and_by_identifier_agree(platform: Platform, consents: ConsentService,
                                                    tenant_a: Tenant) -> None:
    consent = give(consents, platform, tenant_a.org_id)
    with platform.db.reader(tenant_a.org_id) as s:
        pseudonym = consents.subject_pseudonym(s, consent)
    by_pseudonym = check(consents, tenant_a.org_id, SubjectRef(pseudonym=pseudonym))
    by_iin = check(consents, tenant_a.org_id, iin_subject(1))
    spaced = SubjectRef(identifier_type="KZ_IIN", identifier=" " + subject_iin(1)[:6] + " " + subject_iin(1)[6:])
    assert by_pseudonym.allow and by_iin.allow and check(consents, tenant_a.org_id, spaced).allow
    assert by_pseudonym.consent_id == by_iin.consent_id == consent.id
    assert check(consents, tenant_a.org_id, SubjectRef(pseudonym="ps_" + "z" * 26)).reason == "unknown_subject"
    with pytest.raises(InvalidInput) as exc:
        check(consents, tenant_a.org_id, SubjectRef(pseudonym="nope"))
    assert exc.value.field == "subject.pseudonym"


def test_expiry_by_term_denies_from_valid_until_on(platform: Platform, consents: ConsentService,
                                                   tenant_a: Tenant) -> None:
    until = utcnow() + timedelta(hours=1)
    give(consents, platform, tenant_a.org_id, valid_until=until)
    org, subject = tenant_a.org_id, iin_subject(1)
    assert check(consents, org, subject, at=until - timedelta(microseconds=1)).allow
    at_end = check(consents, org, subject, at=until)
    assert not at_end.allow and at_end.reason == "expired"
    assert not check(consents, org, subject, at=until + timedelta(days=1)).allow
    # the sweep brings the stored status up to date, with its history event and audit entry
    with platform.db.transaction(org) as s:
        assert consents.expire_due(s, now=until) == 1
    with platform.db.reader(org) as s:
        [consent] = consents.list_consents(s)
        assert consent.status == "expired" and consents.history(s, consent.id)[-1].event == "expired"
    assert check(consents, org, subject, at=until - timedelta(seconds=1)).reason == "expired"


def test_a_legal_basis_allows_without_consent_and_a_subject_specific_one_only_for_that_subject(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    give(consents, platform, org, iin_subject(1))  # the subjects exist in the vault
    give(consents, platform, org, iin_subject(2))
    with platform.db.transaction(org) as s:
        contract = consents.add_legal_basis(s, kind="contract", purpose="credit", reference="Loan contract No. K-17",
                                            subject=iin_subject(1), actor="user:1")
    d = check(consents, org, iin_subject(1), "credit.collection")
    assert (d.allow, d.basis, d.legal_basis_id, d.reason) == (True, "contract", contract.id, "legal_basis")
    assert not check(consents, org, iin_subject(2), "credit.collection").allow
    with platform.db.transaction(org) as s:
        law = consents.add_legal_basis(s, kind="law", purpose="kyc.aml", reference="AML/CFT Law Art.5", actor="user:1")
    assert check(consents, org, iin_subject(2), "kyc.aml").legal_basis_id == law.id
    assert check(consents, org, iin_subject(9), "kyc.aml").allow  # a law covers people the vault doesn't know
    with platform.db.transaction(org) as s:
        consents.revoke_legal_basis(s, law.id, actor="user:1")
    assert not check(consents, org, iin_subject(2), "kyc.aml").allow


def test_a_legal_basis_counts_only_within_its_validity(platform: Platform, consents: ConsentService,
                                                      tenant_a: Tenant) -> None:
    start, end = utcnow() + timedelta(days=1), utcnow() + timedelta(days=10)
    with platform.db.transaction(tenant_a.org_id) as s:
        consents.add_legal_basis(s, kind="law", purpose="kyc", reference="AML/CFT Law", valid_from=start,
                                 valid_until=end, actor="user:1")
        with pytest.raises(InvalidInput) as exc:
            consents.add_legal_basis(s, kind="law", purpose="kyc", reference="x", valid_from=end, valid_until=start,
                                     actor="user:1")
        assert exc.value.field == "valid_until"
        with pytest.raises(InvalidInput) as exc:
            consents.add_legal_basis(s, kind="whim", purpose="kyc", reference="x", actor="user:1")
        assert exc.value.field == "kind"
    subject = iin_subject(3)
    assert not check(consents, tenant_a.org_id, subject, "kyc.aml").allow
    assert check(consents, tenant_a.org_id, subject, "kyc.aml", at=start).allow
    assert not check(consents, tenant_a.org_id, subject, "kyc.aml", at=end).allow


def test_one_organization_never_sees_anothers_consents(platform: Platform, consents: ConsentService,
                                                       tenant_a: Tenant, tenant_b: Tenant) -> None:
    consent = give(consents, platform, tenant_a.org_id)
    with platform.db.reader(tenant_a.org_id) as s:
        pseudonym = consents.subject_pseudonym(s, consent)
    # the same person, the same pseudonym string: another operator's decision point finds nothing
    assert check(consents, tenant_b.org_id, iin_subject(1)).reason == "unknown_subject"
    assert check(consents, tenant_b.org_id, SubjectRef(pseudonym=pseudonym)).reason == "unknown_subject"
    with platform.db.transaction(tenant_b.org_id) as s:
        consents.add_legal_basis(s, kind="law", purpose="marketing", reference="B's law", actor="user:2")
    # B's blanket basis is B's: A's subject is still decided by A's records
    assert check(consents, tenant_a.org_id, iin_subject(1), "marketing.email").reason == "no_consent"
    with platform.db.reader(tenant_b.org_id) as s:
        with pytest.raises(NotFound):
            consents.get_consent(s, consent.id)
        assert consents.list_consents(s) == [] and consents.consents_of_subject(s, iin_subject(1)) == []
    with platform.db.transaction(tenant_b.org_id) as s, pytest.raises(NotFound):
        consents.withdraw(s, consent.id, channel="written", actor="user:2")
    assert check(consents, tenant_a.org_id, iin_subject(1)).allow


# --- withdrawing --------------------------------------------------------------------------------------


def test_withdrawal_denies_the_next_check_and_signs_a_receipt(platform: Platform, consents: ConsentService,
                                                              tenant_a: Tenant) -> None:
    consent = give(consents, platform, tenant_a.org_id)
    give(consents, platform, tenant_a.org_id, purpose="marketing.email")  # keeps the subject in the vault
    w = withdraw(consents, platform, tenant_a.org_id, consent.id, channel="state_service", actor="user:7")
    d = check(consents, tenant_a.org_id, iin_subject(1))
    assert not d.allow and d.reason == "withdrawn"
    assert not w.refused and not w.shredded and not w.repeated
    body = w.receipt["receipt"]
    assert body["outcome"] == "processing_stopped" and body["collectionMethod"] == "state_service"
    assert body["consentReceiptID"] == consent.receipt_id and body["jurisdiction"] == "KZ"
    assert subject_iin(1) not in w.receipt_text
    with platform.db.reader(tenant_a.org_id) as s:
        key = consents.receipt_public_key(s)
        history = consents.history(s, consent.id)
        stored = s.scalar(select(ConsentWithdrawal).where(ConsentWithdrawal.consent_id == consent.id))
        entry = [e for e in audit.list_entries(s, limit=50) if e.action == "consent.withdraw"][0]
    assert receipts.verify_receipt(w.receipt_text, public_key=key).valid
    assert [h.event for h in history] == ["given", "withdrawn"] and history[-1].actor == "user:7"
    assert stored.channel == "state_service" and stored.receipt == w.receipt_text
    assert entry.object_id == str(consent.id) and entry.details["channel"] == "state_service"


def test_a_tampered_receipt_fails_verification(platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    consent = give(consents, platform, tenant_a.org_id)
    with platform.db.reader(tenant_a.org_id) as s:
        document = consents.receipt(s, consent.id)
        key = consents.receipt_public_key(s)
    assert receipts.verify_receipt(document, public_key=key).valid
    assert document["receipt"]["services"][0]["purposes"][0]["piiCategory"] == ["PHONE_NUMBER"]
    document["receipt"]["art8"]["public_sources"] = True
    result = receipts.verify_receipt(document, public_key=key)
    assert not result.valid and dict((n, ok) for n, ok, _ in result.checks)["signature"] is False
    with platform.db.reader(tenant_a.org_id) as s:
        untouched = consents.receipt(s, consent.id)
    pinned_elsewhere = receipts.verify_receipt(receipts.text_of(untouched), public_key="00" * 32)
    assert not pinned_elsewhere.valid  # a receipt signed by a key other than the pinned one


def test_a_second_withdrawal_returns_the_first_receipt(platform: Platform, consents: ConsentService,
                                                      tenant_a: Tenant) -> None:
    consent = give(consents, platform, tenant_a.org_id)
    first = withdraw(consents, platform, tenant_a.org_id, consent.id, idempotency_key="req-1")
    again = withdraw(consents, platform, tenant_a.org_id, consent.id, idempotency_key="req-1")
    other_key = withdraw(consents, platform, tenant_a.org_id, consent.id, idempotency_key="req-2")
    assert again.repeated and other_key.repeated and not first.repeated
    assert again.receipt_text == first.receipt_text == other_key.receipt_text
    assert again.withdrawal_id == first.withdrawal_id
    second = give(consents, platform, tenant_a.org_id, iin_subject(5), purpose="marketing.email")
    with pytest.raises(Conflict) as exc:
        withdraw(consents, platform, tenant_a.org_id, second.id, idempotency_key="req-1")
    assert exc.value.field == "idempotency_key"
    with platform.db.reader(tenant_a.org_id) as s:
        assert len([e for e in audit.list_entries(s, limit=100) if e.action == "consent.withdraw"]) == 1


def test_withdrawing_an_expired_or_unknown_consent_is_refused_clearly(platform: Platform, consents: ConsentService,
                                                                      tenant_a: Tenant) -> None:
    until = utcnow() + timedelta(hours=1)
    consent = give(consents, platform, tenant_a.org_id, valid_until=until)
    with platform.db.transaction(tenant_a.org_id) as s:
        consents.expire_due(s, now=until)
    with pytest.raises(Conflict) as exc:
        withdraw(consents, platform, tenant_a.org_id, consent.id)
    assert exc.value.field == "consent_id" and "expired" in exc.value.message
    with pytest.raises(NotFound):
        withdraw(consents, platform, tenant_a.org_id, 424242)
    with pytest.raises(InvalidInput) as exc:
        withdraw(consents, platform, tenant_a.org_id, consent.id, channel="telepathy")
    assert exc.value.field == "channel"


def test_a_withdrawal_the_law_forbids_is_refused_with_its_basis_and_processing_continues_under_it(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    third = processor(consents, platform, org, kind="third_party", name="Partner", url="http://127.0.0.1:9/p")
    proc = processor(consents, platform, org, name="Processor", url="http://127.0.0.1:9/q", serial=502)
    consent = give(consents, platform, org, purpose="credit.scoring", data_categories=["credit_history"],
                   third_party_transfer=True, counterparties=[third.counterparty.id, proc.counterparty.id])
    with platform.db.transaction(org) as s:
        consents.record_transfer(s, consent.id, third.counterparty.id, data_categories=["credit_history"], actor="u")
        consents.record_transfer(s, consent.id, proc.counterparty.id, data_categories=["credit_history"], actor="u")
        basis = consents.add_legal_basis(s, kind="contract", purpose="credit", reference="Loan contract No. K-17",
                                         subject=iin_subject(1), actor="user:1")
    w = withdraw(consents, platform, org, consent.id)
    assert w.refused and w.basis is not None and w.basis.id == basis.id and not w.shredded
    assert w.receipt["receipt"]["outcome"] == "withdrawal_refused"
    assert w.receipt["receipt"]["legal_basis"]["reference"] == "Loan contract No. K-17"
    # the consent is withdrawn; processing goes on only under the contract, and check says so
    d = check(consents, org, iin_subject(1), "credit.scoring")
    assert d.allow and d.basis == "contract" and d.consent_id is None and d.legal_basis_id == basis.id
    # the third party (it received the data on the consent) is told; the processor (acting for us) is not
    assert [n.counterparty_id for n in w.notifications] == [third.counterparty.id]
    with platform.db.reader(org) as s:
        assert consents.get_consent(s, consent.id).status == "withdrawn"
        assert consents.history(s, consent.id)[-1].event == "withdrawal_refused"


def test_withdrawal_shreds_the_subject_only_when_nothing_of_the_operator_remains(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    a = give(consents, platform, org, iin_subject(1), purpose="marketing.sms", full_name="Test Person")
    b = give(consents, platform, org, iin_subject(1), purpose="marketing.email")
    first = withdraw(consents, platform, org, a.id)
    assert not first.shredded  # marketing.email still holds
    # a legal basis naming the subject keeps the identity too
    with platform.db.transaction(org) as s:
        basis = consents.add_legal_basis(s, kind="vital_interest", purpose="service", reference="Art.9",
                                         subject=iin_subject(1), actor="u")
    assert not withdraw(consents, platform, org, b.id).shredded
    # a fresh consent, then the basis revoked, then withdrawn: now nothing remains → crypto-shred
    c = give(consents, platform, org, iin_subject(1), purpose="analytics.product")
    with platform.db.transaction(org) as s:
        consents.revoke_legal_basis(s, basis.id, actor="u")
    # a blanket basis for another purpose does not keep this subject's identity
    with platform.db.transaction(org) as s:
        consents.add_legal_basis(s, kind="law", purpose="kyc.aml", reference="AML/CFT Law", actor="u")
    last = withdraw(consents, platform, org, c.id)
    assert last.shredded and last.erasure_certificate_id and last.erasure_certificate_id.startswith("ec_")
    assert last.receipt["receipt"]["erasure"] == {"shredded": True, "certificate_id": last.erasure_certificate_id}
    with platform.db.reader(org) as s:
        pseudonym = consents.subject_pseudonym(s, c)
        assert vault_for(platform).lookup(s, "KZ_IIN", subject_iin(1)) is None
    from qorgau.core.auth import Principal

    admin = Principal("user", 1, org, frozenset({"admin"}))
    with platform.db.transaction(org) as s, pytest.raises(SubjectErased):
        vault_for(platform).detokenize(s, pseudonym, purpose="rights.access", principal=admin)
    # the receipts of earlier consents stay valid and name the (kept) pseudonym, never the person
    with platform.db.reader(org) as s:
        assert consents.receipt(s, a.id)["receipt"]["piiPrincipalId"] == pseudonym


# --- processors, transfers, deadlines --------------------------------------------------------------------


def test_withdrawal_enqueues_one_message_per_counterparty_that_received_data(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    p1 = processor(consents, platform, org, name="P1", serial=511)
    p2 = processor(consents, platform, org, name="P2", serial=512)
    p3 = processor(consents, platform, org, name="P3 (never received)", serial=513)
    no_hook = processor(consents, platform, org, name="P4 (no webhook)", url=None, serial=514)
    ids = [p.counterparty.id for p in (p1, p2, p3, no_hook)]
    consent = give(consents, platform, org, counterparties=ids)
    with platform.db.transaction(org) as s:
        for cp in (p1, p2, p2, no_hook):  # p2 twice: still one message
            consents.record_transfer(s, consent.id, cp.counterparty.id, data_categories=["PHONE_NUMBER"], actor="u")
    w = withdraw(consents, platform, org, consent.id)
    assert sorted(n.counterparty_id for n in w.notifications) == sorted([p1.counterparty.id, p2.counterparty.id,
                                                                         no_hook.counterparty.id])
    deadline = add_working_days(w.withdrawn_at, 15)
    assert all(n.deadline == deadline for n in w.notifications)
    with platform.db.reader(org) as s:
        messages = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert len(messages) == 2 and {m.url for m in messages} == {"http://127.0.0.1:9/hook"}
    assert all(m.status == "pending" and m.topic == "consent.withdrawn" for m in messages)
    import json

    payload = json.loads(messages[0].payload)
    assert payload["consent"]["receipt_id"] == consent.receipt_id and payload["action"] == "stop_processing"
    assert payload["subject"]["pseudonym"].startswith("ps_") and subject_iin(1) not in messages[0].payload
    assert "hook" not in repr(messages[0]) and b"whsec" not in bytes(messages[0].secret_sealed)


def test_a_failed_withdrawal_leaves_no_trace(platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    cp = processor(consents, platform, org)
    consent = give(consents, platform, org, counterparties=[cp.counterparty.id])
    with platform.db.transaction(org) as s:
        consents.record_transfer(s, consent.id, cp.counterparty.id, data_categories=["PHONE_NUMBER"], actor="u")
    with pytest.raises(RuntimeError):
        with platform.db.transaction(org) as s:
            consents.withdraw(s, consent.id, channel="written", actor="user:1")
            raise RuntimeError("the caller's transaction fails after withdraw")
    assert check(consents, org, iin_subject(1)).allow
    with platform.db.reader(org) as s:
        assert s.scalars(select(OutboxMessage)).all() == []
        assert s.scalars(select(ProcessorNotification)).all() == []
        assert vault_for(platform).lookup(s, "KZ_IIN", subject_iin(1)) is not None


def test_processors_confirm_stopping_and_late_ones_are_flagged(platform: Platform, consents: ConsentService,
                                                               tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    p1 = processor(consents, platform, org, name="P1", serial=521)
    p2 = processor(consents, platform, org, name="P2", serial=522)
    consent = give(consents, platform, org, counterparties=[p1.counterparty.id, p2.counterparty.id])
    with platform.db.transaction(org) as s:
        for cp in (p1, p2):
            consents.record_transfer(s, consent.id, cp.counterparty.id, data_categories=["PHONE_NUMBER"], actor="u")
    w = withdraw(consents, platform, org, consent.id)
    n1, n2 = sorted(w.notifications, key=lambda n: n.counterparty_id)
    with platform.db.transaction(org) as s:
        with pytest.raises(NotFound):  # p2's token can't confirm p1's notification
            consents.confirm_stopped(s, n1.id, actor="counterparty:x", counterparty_id=p2.counterparty.id)
        consents.confirm_stopped(s, n1.id, actor=f"counterparty:{p1.counterparty.id}",
                                 counterparty_id=p1.counterparty.id)
        consents.confirm_stopped(s, n1.id, actor="again", counterparty_id=p1.counterparty.id)  # idempotent
    with platform.db.reader(org) as s:
        first = consents.get_notification(s, n1.id)
        assert first.confirmed_by == f"counterparty:{p1.counterparty.id}" and not first.overdue(n1.deadline)
        after = n2.deadline + timedelta(days=1)
        assert consents.get_notification(s, n2.id).overdue(after)
        assert not consents.get_notification(s, n2.id).overdue(n2.deadline)  # the deadline day is in time
        assert [n.id for n in consents.list_notifications(s, overdue_only=True, today=after)] == [n2.id]
        assert [n.id for n in consents.list_notifications(s, open_only=True)] == [n2.id]
        confirms = [e for e in audit.list_entries(s, limit=100) if e.action == "consent.confirm_stopped"]
    assert len(confirms) == 1 and confirms[0].details["late"] is False


def test_a_transfer_to_a_third_party_starts_the_ten_working_day_notice(platform: Platform, consents: ConsentService,
                                                                        tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    third = processor(consents, platform, org, kind="third_party", name="Insurer")
    proc = processor(consents, platform, org, name="Processor", serial=531)
    consent = give(consents, platform, org, data_categories=["PHONE_NUMBER", "EMAIL_ADDRESS"],
                   third_party_transfer=True, counterparties=[third.counterparty.id, proc.counterparty.id],
                   notify_on_transfer=True)
    with platform.db.transaction(org) as s:
        t1 = consents.record_transfer(s, consent.id, third.counterparty.id, data_categories=["PHONE_NUMBER"], actor="u")
        t2 = consents.record_transfer(s, consent.id, proc.counterparty.id, data_categories=["PHONE_NUMBER"], actor="u")
        with pytest.raises(InvalidInput) as exc:
            consents.record_transfer(s, consent.id, third.counterparty.id, data_categories=["KZ_IIN"], actor="u")
        assert exc.value.field == "data_categories.0"
    assert t1.notify_subject and t1.notify_deadline == add_working_days(t1.transferred_at, 10)
    assert not t2.notify_subject and t2.notify_deadline is None  # a processor: no notice (L-PD-TRANSFER)
    with platform.db.reader(org) as s:
        assert [t.id for t in consents.list_transfers(s, pending_only=True)] == [t1.id]
    with platform.db.transaction(org) as s:
        consents.mark_subject_notified(s, t1.id, actor="user:1")
    with platform.db.reader(org) as s:
        assert consents.list_transfers(s, pending_only=True) == []
        assert consents.history(s, consent.id)[-1].event == "subject_notified"


def test_state_service_consents_notify_transfers_by_default(platform: Platform, consents: ConsentService,
                                                            tenant_a: Tenant) -> None:
    assert give(consents, platform, tenant_a.org_id, channel="state_service").notify_on_transfer
    assert not give(consents, platform, tenant_a.org_id, iin_subject(2), channel="written").notify_on_transfer


def test_transfers_need_an_active_consent_that_names_the_counterparty(platform: Platform, consents: ConsentService,
                                                                      tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    named = processor(consents, platform, org, name="Named")
    stranger = processor(consents, platform, org, name="Stranger", serial=541)
    consent = give(consents, platform, org, counterparties=[named.counterparty.id])
    with platform.db.transaction(org) as s, pytest.raises(InvalidInput) as exc:
        consents.record_transfer(s, consent.id, stranger.counterparty.id, data_categories=["PHONE_NUMBER"], actor="u")
    assert exc.value.field == "counterparty_id"
    withdraw(consents, platform, org, consent.id)
    with platform.db.transaction(org) as s, pytest.raises(Conflict) as exc:
        consents.record_transfer(s, consent.id, named.counterparty.id, data_categories=["PHONE_NUMBER"], actor="u")
    assert exc.value.field == "consent_id"


def test_counterparty_tokens_and_secrets_are_shown_once_and_stored_hashed_or_sealed(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    created = processor(consents, platform, tenant_a.org_id)
    assert created.webhook_secret.startswith("whsec_") and created.token.startswith("qcp_")
    assert created.webhook_secret not in repr(created) and created.token not in repr(created)
    row = created.counterparty
    assert created.token.split("_")[-1] not in (row.token_hash or "")
    assert created.webhook_secret.encode() not in bytes(row.webhook_secret_sealed)
    with platform.db.reader() as s:
        assert ConsentService.counterparty_by_token(s, created.token).id == row.id
        from qorgau.core.errors import AuthenticationRequired

        with pytest.raises(AuthenticationRequired):
            ConsentService.counterparty_by_token(s, created.token[:-2] + "xx")
    with platform.db.transaction(tenant_a.org_id) as s:
        new_token = consents.rotate_counterparty_token(s, row.id, actor="u")
    with platform.db.reader() as s:
        from qorgau.core.errors import AuthenticationRequired

        with pytest.raises(AuthenticationRequired):
            ConsentService.counterparty_by_token(s, created.token)
        assert ConsentService.counterparty_by_token(s, new_token).id == row.id


@pytest.mark.parametrize("kwargs, field", [
    ({"kind": "friend"}, "kind"),
    ({"bin": "123"}, "bin"),
    ({"country": "DE"}, "bin"),  # a BIN for a foreign entity
    ({"country": "DE", "bin": None}, "foreign_registration"),
    ({"webhook_url": "ftp://x.example/h"}, "webhook_url"),
    ({"webhook_url": "http://processor.example/h"}, "webhook_url"),  # plain http off loopback
    ({"webhook_url": "https://user:pw@processor.example/h"}, "webhook_url"),
])
def test_bad_counterparties_are_refused_with_the_field(platform: Platform, consents: ConsentService,
                                                       tenant_a: Tenant, kwargs: dict, field: str) -> None:
    args = dict(name="X", kind="processor", bin="990140004654", country="KZ", webhook_url=None, actor="u")
    args.update(kwargs)
    with platform.db.transaction(tenant_a.org_id) as s, pytest.raises(InvalidInput) as exc:
        consents.add_counterparty(s, **args)
    assert exc.value.field == field


# --- the vault's re-identification hook -----------------------------------------------------------------


def test_reidentifying_for_a_purpose_needs_a_consent_or_legal_basis_for_it(platform: Platform,
                                                                           consents: ConsentService,
                                                                           tenant_a: Tenant) -> None:
    from qorgau.core.auth import Principal

    org = tenant_a.org_id
    consent = give(consents, platform, org, purpose="marketing.sms", full_name="Some Body")
    with platform.db.reader(org) as s:
        pseudonym = consents.subject_pseudonym(s, consent)
    dpo = Principal("user", tenant_a.users["dpo"][0], org, frozenset({"dpo"}))
    vault = vault_for(platform)
    with platform.db.transaction(org) as s:
        assert vault.detokenize(s, pseudonym, purpose="marketing.sms", principal=dpo).identifiers["PERSON"]
    with platform.db.transaction(org) as s, pytest.raises(ReidentificationRefused) as exc:
        vault.detokenize(s, pseudonym, purpose="credit.scoring", principal=dpo)
    assert "credit.scoring" in exc.value.reason
    with platform.db.transaction(org) as s:
        result = vault.detokenize_many(s, [pseudonym], purpose="credit.scoring", principal=dpo)
    assert isinstance(result[pseudonym], ReidentificationRefused)
    # purposes outside the taxonomy are the vault's business in the default mode
    with platform.db.transaction(org) as s:
        assert vault.detokenize(s, pseudonym, purpose="customer-request", principal=dpo).pseudonym == pseudonym
    withdraw(consents, platform, org, consent.id)
    with platform.db.transaction(org) as s, pytest.raises((ReidentificationRefused, SubjectErased)):
        vault.detokenize(s, pseudonym, purpose="marketing.sms", principal=dpo)


def test_strict_mode_refuses_reidentification_for_purposes_outside_the_taxonomy(tmp_path, database_url: str,
                                                                                backend: str) -> None:
    from qorgau.core import auth
    from qorgau.core.auth import Principal
    from qorgau.core.settings import Settings

    from qorgau.consent.service import consent_for

    settings = Settings(data_dir=tmp_path / "var", database_url=database_url, sth_interval_seconds=0,
                        consent_reidentification="strict")
    platform = Platform.initialize(settings)
    try:
        with platform.db.transaction() as s:
            org = auth.create_organization(s, name="Strict", bin="940140000385", actor="t").id
        service = consent_for(platform)
        consent = give(service, platform, org, full_name="Some Body")
        with platform.db.reader(org) as s:
            pseudonym = service.subject_pseudonym(s, consent)
        admin = Principal("user", 1, org, frozenset({"admin"}))
        with platform.db.transaction(org) as s, pytest.raises(ReidentificationRefused):
            vault_for(platform).detokenize(s, pseudonym, purpose="customer-request", principal=admin)
        with platform.db.transaction(org) as s:
            assert vault_for(platform).detokenize(s, pseudonym, purpose="marketing.sms", principal=admin)
        service.close()
    finally:
        platform.close()


def test_deadlines_are_working_days_not_calendar_days() -> None:
    # 2026-03-20 is a Friday before Nauryz (21–23 March): 15 working days land well after 15 calendar days
    start = date(2026, 3, 20)
    assert add_working_days(start, 15) > start + timedelta(days=15 + 4)
