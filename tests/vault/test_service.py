"""The identity vault's service: tokenize, look up, re-identify — the stories of L-PD-SPLIT, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import re
import threading

import pytest
from conftest import Tenant
from sqlalchemy import func, select

from qorgau.core import audit
from qorgau.core.audit import AuditEntry
from qorgau.core.errors import InvalidInput, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.discovery.redact import normalized_value
from qorgau.identifiers import is_valid_iin, synthetic_kz_number
from qorgau.vault.models import VaultLookup, VaultPseudonym, VaultSubject
from qorgau.vault.service import (
    LOOKUP_TYPES,
    Identity,
    ReidentificationRefused,
    RowProblem,
    SubjectRecord,
    Token,
    UnknownPseudonym,
    Vault,
    check_identifier,
    normalize_purpose,
)

from .conftest import EMAIL, IIN, IIN_2, NAME, PHONE, PHONE_E164, principal

PSEUDONYM = re.compile(r"ps_[a-z]{26}")
VALUES = (IIN, IIN_2, "701 234 56 78", "7012345678", "aigerim", "Жаксылыков")


def tokenize(platform: Platform, vault: Vault, org: int, entity_type: str, value: str, **kw: str) -> Token:
    with platform.db.transaction(org) as s:
        return vault.tokenize(s, entity_type, value, actor="test", **kw)


def detokenize(platform: Platform, vault: Vault, org: int, pseudonym: str, *roles: str, **kw: str) -> Identity:
    with platform.db.transaction(org) as s:
        return vault.detokenize(s, pseudonym, purpose=kw.pop("purpose", "customer-request"),
                                principal=principal(org, *(roles or ("dpo",))), **kw)


def all_audit_text(platform: Platform) -> str:
    with platform.db.reader() as s:
        return " ".join(f"{e.object_id} {e.details}" for e in s.scalars(select(AuditEntry)))


# --- tokenize ---------------------------------------------------------------------------------------


def test_an_iin_gets_one_stable_letters_only_pseudonym_however_it_is_written(platform, vault, tenant_a) -> None:
    first = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN)
    assert first.created and PSEUDONYM.fullmatch(first.pseudonym)
    for spelling in (IIN, f" {IIN} ", "7910 2830 2728", "791028-302728"):
        again = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", spelling)
        assert again == Token(first.pseudonym, first.subject_id, False)
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.scalar(select(func.count()).select_from(VaultSubject)) == 1


def test_phones_and_emails_are_normalized_before_indexing(platform, vault, tenant_a) -> None:
    a = tokenize(platform, vault, tenant_a.org_id, "PHONE_NUMBER", PHONE)
    assert tokenize(platform, vault, tenant_a.org_id, "PHONE_NUMBER", PHONE_E164).subject_id == a.subject_id
    assert tokenize(platform, vault, tenant_a.org_id, "PHONE_NUMBER", "87012345678").subject_id == a.subject_id
    e = tokenize(platform, vault, tenant_a.org_id, "EMAIL_ADDRESS", EMAIL)
    assert tokenize(platform, vault, tenant_a.org_id, "EMAIL_ADDRESS", EMAIL.lower()).subject_id == e.subject_id
    assert identity_of(platform, vault, tenant_a, a.pseudonym).identifiers == {"PHONE_NUMBER": [PHONE_E164]}


def identity_of(platform: Platform, vault: Vault, tenant: Tenant, pseudonym: str) -> Identity:
    return detokenize(platform, vault, tenant.org_id, pseudonym)


def test_domains_give_unlinkable_pseudonyms_of_one_subject(platform, vault, tenant_a) -> None:
    a = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN, domain="marketing")
    b = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN, domain="scoring")
    assert a.subject_id == b.subject_id and a.pseudonym != b.pseudonym
    with platform.db.transaction(tenant_a.org_id) as s:
        assert vault.pseudonym_for(s, a.subject_id, "marketing") == a.pseudonym
        assert vault.pseudonym_for(s, a.subject_id) not in (a.pseudonym, b.pseudonym)


def test_two_organizations_never_share_a_pseudonym_for_the_same_person(platform, vault, tenant_a, tenant_b) -> None:
    a = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN)
    b = tokenize(platform, vault, tenant_b.org_id, "KZ_IIN", IIN)
    assert b.created and a.pseudonym != b.pseudonym and a.subject_id != b.subject_id
    with platform.db.reader() as s:
        blinds = s.execute(select(VaultLookup.organization_id, VaultLookup.blind_index)).all()
    assert len({bytes(b) for _, b in blinds}) == 2  # keyed per organization: nothing links the two rows


@pytest.mark.parametrize("entity_type, value, reason", [
    ("KZ_IIN", "791028302729", "check digit"),
    ("KZ_IIN", "791328302728", "birth date"),
    ("KZ_IIN", "12345", "12 digits"),
    ("PHONE_NUMBER", "1234567", "area code"),
    ("EMAIL_ADDRESS", "not-an-email", "@"),
    ("KZ_PASSPORT", "N1234", "8 digits"),
    ("KZ_ID_CARD", "12345678", "9 digits"),
])
def test_an_invalid_identifier_is_refused_with_the_validators_reason_never_the_value(
        platform, vault, tenant_a, entity_type, value, reason) -> None:
    with pytest.raises(InvalidInput) as caught, platform.db.transaction(tenant_a.org_id) as s:
        vault.tokenize(s, entity_type, value, actor="test")
    assert caught.value.field == "value" and reason in caught.value.message and value not in caught.value.message
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.scalar(select(func.count()).select_from(VaultSubject)) == 0


@pytest.mark.parametrize("entity_type", ["PERSON", "ADDRESS", "KZ_BIN", "nonsense"])
def test_only_lookup_types_can_be_tokenized_alone(platform, vault, tenant_a, entity_type) -> None:
    with pytest.raises(InvalidInput) as caught, platform.db.transaction(tenant_a.org_id) as s:
        vault.tokenize(s, entity_type, "Жаксылыков", actor="test")
    assert caught.value.field == "entity_type"


def test_bad_domains_are_refused(platform, vault, tenant_a) -> None:
    for domain in ("", "UPPER", "a b", "x" * 41, "ünï"):
        with pytest.raises(InvalidInput) as caught, platform.db.transaction(tenant_a.org_id) as s:
            vault.tokenize(s, "KZ_IIN", IIN, domain=domain, actor="test")
        assert caught.value.field == "domain"


def test_the_fast_path_agrees_with_the_one_normalizer_and_the_full_validator() -> None:
    rng = random.Random(7)
    candidates = [synthetic_kz_number(f"{rng.randint(0, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
                                      f"{rng.randint(1, 6)}", i) for i in range(300)]
    candidates += ["".join(rng.choice("0123456789") for _ in range(12)) for _ in range(300)]
    for value in candidates:
        normalized, reason = check_identifier("KZ_IIN", value)
        assert normalized == normalized_value("KZ_IIN", value)
        assert (reason is None) == is_valid_iin(value), value


def test_creating_a_subject_is_audited_with_the_pseudonym_and_never_the_value(platform, vault, tenant_a) -> None:
    token = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN)
    with platform.db.reader(tenant_a.org_id) as s:
        entry = audit.list_entries(s, limit=1, action="vault.tokenize")[0]
    assert entry.object_id == token.pseudonym and entry.details == {
        "entity_type": "KZ_IIN", "domain": "default", "created": True}
    tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN)  # nothing changed: nothing to audit
    with platform.db.reader(tenant_a.org_id) as s:
        assert len(audit.list_entries(s, action="vault.tokenize")) == 1


# --- batches ----------------------------------------------------------------------------------------


def test_a_batch_reports_bad_records_by_index_and_stores_the_rest(platform, vault, tenant_a) -> None:
    records = [
        SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME, "PHONE_NUMBER": PHONE}),
        SubjectRecord({"KZ_IIN": "791028302729", "PERSON": "Иванов Иван"}),
        SubjectRecord({"PERSON": "Только Имя"}),
        SubjectRecord({"KZ_IIN": [IIN, IIN_2]}),
        SubjectRecord({"MADE UP": "x"}),
        SubjectRecord({"EMAIL_ADDRESS": EMAIL, "ADDRESS": "Астана, ул. Бейбітшілік 10", "KZ_BIN": "940140000385"}),
        SubjectRecord({"KZ_IIN": None, "PHONE_NUMBER": "", "EMAIL_ADDRESS": "x@y.kz"}),
    ]
    with platform.db.transaction(tenant_a.org_id) as s:
        results = vault.tokenize_many(s, records, actor="test")
    assert [type(r).__name__ for r in results] == ["Token", "RowProblem", "RowProblem", "RowProblem", "RowProblem",
                                                   "Token", "Token"]
    problems = {r.index: r for r in results if isinstance(r, RowProblem)}
    assert problems[1].field == "KZ_IIN" and "check digit" in problems[1].reason
    assert problems[2].field == "identifiers" and "no lookup identifier" in problems[2].reason
    assert problems[3].field == "KZ_IIN" and "more than one" in problems[3].reason
    assert problems[4].field == "MADE UP"
    assert all(v not in r.reason for r in problems.values() for v in VALUES)
    first = detokenize(platform, vault, tenant_a.org_id, results[0].pseudonym)
    assert first.identifiers == {"KZ_IIN": [IIN], "PERSON": [NAME], "PHONE_NUMBER": [PHONE_E164]}
    sixth = detokenize(platform, vault, tenant_a.org_id, results[5].pseudonym)
    assert sixth.identifiers["ADDRESS"] == ["Астана, ул. Бейбітшілік 10"] and sixth.identifiers["KZ_BIN"] == ["940140000385"]
    with platform.db.reader(tenant_a.org_id) as s:
        entry = audit.list_entries(s, limit=1, action="vault.tokenize_many")[0]
    assert entry.details == {"domain": "default", "records": 7, "problems": 4, "subjects_created": 3,
                             "subjects_updated": 0, "lookups_added": 4, "invalid_kept": 0}


def test_keep_invalid_stores_invalid_identifiers_marked_with_their_reason(platform, vault, tenant_a) -> None:
    bad = "791028302729"
    with platform.db.transaction(tenant_a.org_id) as s:
        token, = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": bad, "PERSON": NAME})], actor="test",
                                     keep_invalid=True)
    assert isinstance(token, Token)
    identity = detokenize(platform, vault, tenant_a.org_id, token.pseudonym)
    assert identity.identifiers["KZ_IIN"] == [bad] and identity.invalid == {"KZ_IIN": [bad]}
    with platform.db.reader(tenant_a.org_id) as s:
        assert vault.lookup(s, "KZ_IIN", bad) == token.subject_id  # an invalid value is found again too
        assert vault.stats(s).with_invalid == 1


def test_rerunning_a_batch_creates_no_duplicates_and_merges_new_attributes(platform, vault, tenant_a) -> None:
    iins = list(dict.fromkeys(synthetic_kz_number("8501014", i) for i in range(80)))[:60]
    batch = [SubjectRecord({"KZ_IIN": iin, "PERSON": f"Person {i}"}) for i, iin in enumerate(iins)]
    with platform.db.transaction(tenant_a.org_id) as s:
        first = vault.tokenize_many(s, batch, actor="test")
    with platform.db.transaction(tenant_a.org_id) as s:  # the "resume after a crash" run
        again = vault.tokenize_many(s, batch, actor="test")
    assert [t.pseudonym for t in again] == [t.pseudonym for t in first]
    assert all(t.created for t in first) and not any(t.created for t in again)
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.scalar(select(func.count()).select_from(VaultSubject)) == 60
        assert len(audit.list_entries(s, action="vault.tokenize_many")) == 1  # the re-run changed nothing
    with platform.db.transaction(tenant_a.org_id) as s:
        vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": iins[0], "PHONE_NUMBER": PHONE, "PERSON": "Person 0"})],
                            actor="test")
    identity = detokenize(platform, vault, tenant_a.org_id, first[0].pseudonym)
    assert identity.identifiers == {"KZ_IIN": [iins[0]], "PERSON": ["Person 0"], "PHONE_NUMBER": [PHONE_E164]}
    with platform.db.reader(tenant_a.org_id) as s:
        assert vault.lookup(s, "PHONE_NUMBER", PHONE) == first[0].subject_id


def test_one_batch_with_the_same_person_twice_makes_one_subject(platform, vault, tenant_a) -> None:
    with platform.db.transaction(tenant_a.org_id) as s:
        a, b = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME}),
                                       SubjectRecord({"KZ_IIN": "7910 2830 2728", "EMAIL_ADDRESS": EMAIL})],
                                   actor="test")
    assert a.subject_id == b.subject_id and a.created and not b.created
    identity = detokenize(platform, vault, tenant_a.org_id, a.pseudonym)
    assert identity.identifiers == {"KZ_IIN": [IIN], "PERSON": [NAME], "EMAIL_ADDRESS": ["aigerim.seitkali@gov.kz"]}


def test_a_shared_phone_never_merges_two_people_with_different_iins(platform, vault, tenant_a) -> None:
    with platform.db.transaction(tenant_a.org_id) as s:
        mother, = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PHONE_NUMBER": PHONE})], actor="test")
    with platform.db.transaction(tenant_a.org_id) as s:
        son, = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN_2, "PHONE_NUMBER": PHONE})], actor="test")
        only_phone, = vault.tokenize_many(s, [SubjectRecord({"PHONE_NUMBER": PHONE, "PERSON": NAME})], actor="test")
    assert son.created and son.subject_id != mother.subject_id
    assert only_phone.subject_id == mother.subject_id  # the phone still finds whoever gave it first
    assert detokenize(platform, vault, tenant_a.org_id, son.pseudonym).identifiers == {
        "KZ_IIN": [IIN_2], "PHONE_NUMBER": [PHONE_E164]}


# --- lookup -----------------------------------------------------------------------------------------


def test_lookup_finds_a_subject_by_blind_index_only(platform, vault, tenant_a, tenant_b) -> None:
    token = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN)
    with platform.db.reader(tenant_a.org_id) as s:
        assert vault.lookup(s, "KZ_IIN", "7910 2830 2728") == token.subject_id
        assert vault.lookup(s, "KZ_IIN", IIN_2) is None
        assert vault.lookup(s, "PHONE_NUMBER", PHONE) is None
        with pytest.raises(InvalidInput):
            vault.lookup(s, "PERSON", NAME)
    with platform.db.reader(tenant_b.org_id) as s:
        assert vault.lookup(s, "KZ_IIN", IIN) is None  # B has never stored anything: no keys, no answer


def test_no_column_holds_an_identifier_in_the_clear(platform, vault, tenant_a) -> None:
    with platform.db.transaction(tenant_a.org_id) as s:
        vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME, "PHONE_NUMBER": PHONE,
                                               "EMAIL_ADDRESS": EMAIL})], actor="test")
    dump = []
    with platform.db.reader() as s:
        for model in (VaultSubject, VaultLookup, VaultPseudonym):
            for row in s.execute(select(model.__table__)).all():
                dump.extend(bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode() for v in row)
    blob = b"\x00".join(dump)
    for value in (IIN, "7012345678", "aigerim", NAME, "Жаксылыков"):
        assert value.encode() not in blob
    assert IIN not in all_audit_text(platform)


# --- re-identification ------------------------------------------------------------------------------


@pytest.mark.parametrize("roles", [("reviewer",), ("regulator",), ("citizen",), ()])
def test_only_admins_and_dpos_may_reidentify(platform, vault, tenant_a, roles) -> None:
    token = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN)
    with pytest.raises(PermissionDenied), platform.db.transaction(tenant_a.org_id) as s:
        vault.detokenize(s, token.pseudonym, purpose="customer-request", principal=principal(tenant_a.org_id, *roles))
    with pytest.raises(PermissionDenied), platform.db.transaction(tenant_a.org_id) as s:
        vault.detokenize_many(s, [token.pseudonym], purpose="customer-request",
                              principal=principal(tenant_a.org_id, *roles))
    for role in ("admin", "dpo"):
        assert detokenize(platform, vault, tenant_a.org_id, token.pseudonym, role).identifiers == {"KZ_IIN": [IIN]}


def test_a_principal_of_another_organization_cannot_reidentify_in_this_session(platform, vault, tenant_a, tenant_b) -> None:
    token = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN)
    with pytest.raises(PermissionDenied), platform.db.transaction(tenant_a.org_id) as s:
        vault.detokenize(s, token.pseudonym, purpose="audit", principal=principal(tenant_b.org_id, "admin"))


def test_org_b_cannot_detokenize_org_as_pseudonym(platform, vault, tenant_a, tenant_b) -> None:
    token = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN)
    tokenize(platform, vault, tenant_b.org_id, "KZ_IIN", IIN_2)
    with pytest.raises(UnknownPseudonym), platform.db.transaction(tenant_b.org_id) as s:
        vault.detokenize(s, token.pseudonym, purpose="audit", principal=principal(tenant_b.org_id, "admin"))
    with platform.db.transaction(tenant_b.org_id) as s:
        assert vault.detokenize_many(s, [token.pseudonym], purpose="audit",
                                     principal=principal(tenant_b.org_id, "admin")) == {token.pseudonym: None}


@pytest.mark.parametrize("purpose, expected", [
    ("customer-request", "customer-request"), ("  Court Order ", "court-order"), ("fraud_check.2026", "fraud_check.2026"),
])
def test_purposes_are_codes(purpose, expected) -> None:
    assert normalize_purpose(purpose) == expected


@pytest.mark.parametrize("purpose", ["", "   ", "Иванов просил", "a;b", "x" * 65, "-leading"])
def test_free_text_or_empty_purposes_are_refused(platform, vault, tenant_a, purpose) -> None:
    token = tokenize(platform, vault, tenant_a.org_id, "KZ_IIN", IIN)
    with pytest.raises(InvalidInput) as caught, platform.db.transaction(tenant_a.org_id) as s:
        vault.detokenize(s, token.pseudonym, purpose=purpose, principal=principal(tenant_a.org_id, "dpo"))
    assert caught.value.field == "purpose"


def test_every_reidentification_is_audited_with_its_purpose_and_no_values(platform, vault, tenant_a) -> None:
    with platform.db.transaction(tenant_a.org_id) as s:
        tokens = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME, "PHONE_NUMBER": PHONE}),
                                         SubjectRecord({"KZ_IIN": IIN_2})], actor="test")
    detokenize(platform, vault, tenant_a.org_id, tokens[0].pseudonym, purpose="court-order")
    with platform.db.transaction(tenant_a.org_id) as s:
        found = vault.detokenize_many(s, [t.pseudonym for t in tokens] + ["ps_" + "q" * 26], purpose="statistics",
                                      principal=principal(tenant_a.org_id, "admin", user_id=7))
    assert found["ps_" + "q" * 26] is None and found[tokens[1].pseudonym].identifiers == {"KZ_IIN": [IIN_2]}
    with platform.db.reader(tenant_a.org_id) as s:
        single = audit.list_entries(s, action="vault.detokenize")
        batch = audit.list_entries(s, action="vault.detokenize_many")
        log = vault.reidentification_log(s)
    assert single[0].object_id == tokens[0].pseudonym and single[0].actor == "user:1"
    assert single[0].details == {"purpose": "court-order", "domain": "default", "count": 1}
    assert batch[0].actor == "user:7" and batch[0].details == {
        "purpose": "statistics", "domain": "default", "count": 2, "requested": 3, "unknown": 1, "erased": 0,
        "refused": 0}
    assert [(e.purpose, e.count, e.batch) for e in log] == [("statistics", 2, True), ("court-order", 1, False)]
    text = all_audit_text(platform)
    for value in VALUES:
        assert value not in text


def test_the_consent_hook_runs_before_decrypting_and_may_refuse(platform, vault, tenant_a, monkeypatch) -> None:
    from qorgau.vault import service

    monkeypatch.setattr(service, "_GLOBAL_CHECKS", [])  # only this test's check (the consent module may be loaded)
    with platform.db.transaction(tenant_a.org_id) as s:
        allowed, refused = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN}), SubjectRecord({"KZ_IIN": IIN_2})],
                                               actor="test")
    seen = []

    def consent_check(session, request):
        seen.append(request)
        assert not any(v in repr(request) for v in VALUES)  # ids, pseudonyms and the purpose only
        return {refused.subject_id: "consent withdrawn for purpose " + request.purpose}

    vault.reidentification_checks.append(consent_check)
    try:
        with pytest.raises(ReidentificationRefused) as caught:
            detokenize(platform, vault, tenant_a.org_id, refused.pseudonym, purpose="campaign-review")
        assert "consent withdrawn" in caught.value.message and caught.value.status == 403
        assert detokenize(platform, vault, tenant_a.org_id, allowed.pseudonym).identifiers == {"KZ_IIN": [IIN]}
        with platform.db.transaction(tenant_a.org_id) as s:
            out = vault.detokenize_many(s, [allowed.pseudonym, refused.pseudonym], purpose="campaign-review",
                                        principal=principal(tenant_a.org_id, "dpo"))
        assert isinstance(out[refused.pseudonym], ReidentificationRefused)
        assert isinstance(out[allowed.pseudonym], Identity)
        assert seen[-1].subject_ids == (allowed.subject_id, refused.subject_id) and seen[-1].purpose == "campaign-review"
    finally:
        vault.reidentification_checks.remove(consent_check)
    with platform.db.reader(tenant_a.org_id) as s:
        assert audit.list_entries(s, action="vault.detokenize_many")[0].details["refused"] == 1


def test_nothing_that_holds_identifiers_prints_them(platform, vault, tenant_a) -> None:
    with platform.db.transaction(tenant_a.org_id) as s:
        token, = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME, "PHONE_NUMBER": PHONE})],
                                     actor="test")
    identity = detokenize(platform, vault, tenant_a.org_id, token.pseudonym)
    record = SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME})
    for obj in (identity, record, token, vault):
        for text in (repr(obj), str(obj)):
            for value in (IIN, NAME, PHONE_E164, "Жаксылыков"):
                assert value not in text
    assert "KZ_IIN" in repr(identity) and "PERSON" in repr(record)


# --- concurrency and statistics ---------------------------------------------------------------------


def test_two_threads_tokenizing_the_same_new_iin_get_one_subject(platform, vault, tenant_a) -> None:
    barrier = threading.Barrier(4)
    results: list[object] = []

    def worker(kind: str) -> None:
        barrier.wait()
        try:
            with platform.db.transaction(tenant_a.org_id) as s:
                if kind == "one":
                    results.append(vault.tokenize(s, "KZ_IIN", IIN, actor="test"))
                else:
                    results.append(vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME})],
                                                       actor="test")[0])
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            results.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in ("one", "many", "one", "many")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, Token) for r in results), results
    assert len({r.subject_id for r in results}) == 1 and len({r.pseudonym for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.scalar(select(func.count()).select_from(VaultSubject)) == 1
        assert s.scalar(select(func.count()).select_from(VaultLookup)) == 1


def test_statistics_count_subjects_types_and_reidentifications(platform, vault, tenant_a, tenant_b) -> None:
    with platform.db.transaction(tenant_a.org_id) as s:
        tokens = vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME}),
                                         SubjectRecord({"PHONE_NUMBER": PHONE, "CUSTOM_ID": "A-1"})], actor="test")
    detokenize(platform, vault, tenant_a.org_id, tokens[0].pseudonym, purpose="court-order")
    tokenize(platform, vault, tenant_b.org_id, "KZ_IIN", IIN_2)
    with platform.db.reader(tenant_a.org_id) as s:
        stats = vault.stats(s)
        by_day = vault.reidentifications_by_day(s)
    assert (stats.subjects, stats.active, stats.erased, stats.lookups, stats.pseudonyms) == (2, 2, 0, 2, 2)
    assert stats.by_type == {"KZ_IIN": 1, "PERSON": 1, "PHONE_NUMBER": 1, "OTHER": 1}
    assert stats.reidentifications == {"court-order": 1}
    assert len(by_day) == 1 and by_day[0][1:] == ("court-order", 1)
    assert set(LOOKUP_TYPES) >= {"KZ_IIN", "PHONE_NUMBER", "EMAIL_ADDRESS", "KZ_PASSPORT", "KZ_ID_CARD"}


@pytest.mark.parametrize("entity_type, values", [
    ("PHONE_NUMBER", ["8 (701) 234-56-78", "+7 701 234 56 78", "87012345678", "7012345678", "+79161234567", "12", "abc"]),
    ("EMAIL_ADDRESS", ["Aigerim@Gov.KZ", " a.b@mail.ru ", "no-at-sign", "x@y"]),
    ("KZ_PASSPORT", ["N12345678", "n 12345678", "\u041d12345678", "N123"]),
])
def test_validated_values_are_normalized_exactly_as_discovery_does(entity_type, values) -> None:
    for value in values:
        normalized, reason = check_identifier(entity_type, value)
        assert normalized == normalized_value(entity_type, value), value
